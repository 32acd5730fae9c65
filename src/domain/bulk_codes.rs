//! Bulk codes for print or online (`POST /api/v1/campaigns/{id}/codes`) and imported
//! codes (CSV): what a request may ask for, and how its codes are made.
//!
//! A pattern is the code's shape: `#` is one random character of the charset, letters and
//! digits are kept, and dashes or spaces only group it for people (codes are stored
//! without them, as [`CouponCode::parse`] reads what people type).

use rand::seq::SliceRandom;
use rand::Rng;

use super::coupon_code::{Charset, CodeFormat, CouponCode};

/// More than this many codes in one request are made by a job (answered 202).
pub const SYNC_MAX: u32 = 10_000;
/// The most one request (or one job) may make.
pub const COUNT_MAX: u32 = 100_000;
/// The most one CSV import may hold.
pub const IMPORT_MAX: usize = 100_000;
/// The code space must be this many times the count, so codes stay unguessable.
const SPACE_FACTOR: f64 = 1_000_000.0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    #[error("count: between 1 and {COUNT_MAX}")]
    Count,
    #[error("pattern: use # for a random character, A-Z and 0-9 as they are, and - or spaces to group; 6 to 32 #, at most 64 characters in all")]
    Pattern,
    #[error("charset: 10 to 64 distinct characters of A-Z and 0-9")]
    Charset,
    #[error("prefix: at most 8 characters of A-Z and 0-9")]
    Prefix,
    #[error("pattern and charset allow too few codes for {0}: they would be guessable; use more # or a larger charset")]
    TooFewCodes(u32),
}

impl BulkError {
    pub fn code(&self) -> &'static str {
        match self {
            BulkError::Count => "invalid_count",
            BulkError::Pattern => "invalid_pattern",
            BulkError::Charset => "invalid_charset",
            BulkError::Prefix => "invalid_code_prefix",
            BulkError::TooFewCodes(_) => "code_space_too_small",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Random,
    Literal(char),
}

/// A checked request for `count` codes.
#[derive(Debug, Clone)]
pub struct BulkSpec {
    count: u32,
    prefix: String,
    pieces: Vec<Piece>,
    charset: Charset,
}

impl BulkSpec {
    /// Unset fields come from the campaign's own code format.
    pub fn parse(
        count: u32,
        pattern: Option<&str>,
        charset: Option<&str>,
        prefix: Option<&str>,
        campaign: &CodeFormat,
    ) -> Result<BulkSpec, BulkError> {
        if !(1..=COUNT_MAX).contains(&count) {
            return Err(BulkError::Count);
        }
        let charset = match charset {
            None => campaign.charset().clone(),
            Some(raw) => Charset::parse(raw).map_err(|_| BulkError::Charset)?,
        };
        let prefix = prefix.unwrap_or(campaign.prefix()).to_string();
        if prefix.len() > 8
            || !prefix
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(BulkError::Prefix);
        }
        let pieces = match pattern {
            None => vec![Piece::Random; campaign.length()],
            Some(raw) => parse_pattern(raw)?,
        };
        let random = pieces.iter().filter(|p| **p == Piece::Random).count();
        if !(6..=32).contains(&random) || prefix.len() + pieces.len() > 64 {
            return Err(BulkError::Pattern);
        }
        let space = (charset.as_str().len() as f64).powi(random as i32);
        if space < f64::from(count) * SPACE_FACTOR {
            return Err(BulkError::TooFewCodes(count));
        }
        Ok(BulkSpec {
            count,
            prefix,
            pieces,
            charset,
        })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// One code, canonical (as stored and looked up).
    pub fn generate<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        let alphabet = self.charset.as_str().as_bytes();
        let mut code = String::with_capacity(self.prefix.len() + self.pieces.len());
        code.push_str(&self.prefix);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(c) => code.push(*c),
                // The charset is never empty (checked when parsed).
                Piece::Random => code.push(char::from(*alphabet.choose(rng).unwrap_or(&b'A'))),
            }
        }
        code
    }

    /// The request as the job keeps it: (pattern, charset, prefix).
    pub fn describe(&self) -> (String, String, String) {
        let pattern = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Random => '#',
                Piece::Literal(c) => *c,
            })
            .collect();
        (
            pattern,
            self.charset.as_str().to_string(),
            self.prefix.clone(),
        )
    }
}

fn parse_pattern(raw: &str) -> Result<Vec<Piece>, BulkError> {
    let mut pieces = Vec::new();
    for c in raw.chars() {
        match c {
            '#' => pieces.push(Piece::Random),
            '-' | ' ' => {}
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => pieces.push(Piece::Literal(c)),
            _ => return Err(BulkError::Pattern),
        }
    }
    Ok(pieces)
}

/// Why one line of an import cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based, as an editor shows the file.
    pub line: usize,
    pub value: String,
    pub error: &'static str,
}

/// The text of an import body: UTF-8, without the byte-order mark spreadsheets write;
/// `None` when it is not UTF-8.
pub fn import_text(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    Some(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Reads an import: one code per line (the first line may be the header `code`; other
/// columns after a comma are ignored), blank lines skipped. Codes are read as people
/// type them (any case, dashes). Returns the codes with their lines, or every bad line.
pub fn parse_import(text: &str) -> Result<Vec<(usize, String)>, Vec<LineError>> {
    let mut codes: Vec<(usize, String)> = Vec::new();
    let mut errors = Vec::new();
    let mut first_line: std::collections::HashMap<String, usize> = Default::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let cell = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if cell.is_empty() || (n == 1 && cell.eq_ignore_ascii_case("code")) {
            continue;
        }
        let error = match CouponCode::parse(cell) {
            Err(_) => Some("invalid_code"),
            Ok(code) if code.as_str().len() < 6 => Some("code_too_short"),
            Ok(code) => match first_line.get(code.as_str()) {
                Some(_) => Some("duplicate_in_file"),
                None => {
                    first_line.insert(code.as_str().to_string(), n);
                    codes.push((n, code.as_str().to_string()));
                    None
                }
            },
        };
        if let Some(error) = error {
            errors.push(LineError {
                line: n,
                value: cell.chars().take(80).collect(),
                error,
            });
        }
    }
    if errors.is_empty() {
        Ok(codes)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_make_the_codes_they_describe() {
        let spec = BulkSpec::parse(
            100,
            Some("####-####-XMAS"),
            Some("digits"),
            Some("PR"),
            &CodeFormat::default(),
        )
        .unwrap();
        let mut rng = rand::thread_rng();
        let code = spec.generate(&mut rng);
        assert_eq!(code.len(), 2 + 12);
        assert!(code.starts_with("PR"));
        assert!(code.ends_with("XMAS"));
        assert!(code[2..10].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(CouponCode::parse(&code).unwrap().as_str(), code);
        let default = BulkSpec::parse(5, None, None, None, &CodeFormat::default()).unwrap();
        assert_eq!(default.generate(&mut rng).len(), 10);
    }

    #[test]
    fn bad_requests_are_refused_with_their_codes() {
        let f = CodeFormat::default();
        let code = |r: Result<BulkSpec, BulkError>| r.unwrap_err().code();
        assert_eq!(
            code(BulkSpec::parse(0, None, None, None, &f)),
            "invalid_count"
        );
        assert_eq!(
            code(BulkSpec::parse(COUNT_MAX + 1, None, None, None, &f)),
            "invalid_count"
        );
        assert_eq!(
            code(BulkSpec::parse(1, Some("##"), None, None, &f)),
            "invalid_pattern"
        );
        assert_eq!(
            code(BulkSpec::parse(1, Some("######a"), None, None, &f)),
            "invalid_pattern"
        );
        assert_eq!(
            code(BulkSpec::parse(1, None, Some("AB"), None, &f)),
            "invalid_charset"
        );
        assert_eq!(
            code(BulkSpec::parse(1, None, None, Some("ab"), &f)),
            "invalid_code_prefix"
        );
        assert_eq!(
            code(BulkSpec::parse(
                50_000,
                Some("######"),
                Some("digits"),
                None,
                &f
            )),
            "code_space_too_small"
        );
    }

    #[test]
    fn imports_report_every_bad_line() {
        let ok = parse_import("code\nabc-def-1\n\nXYZ12345,extra\n").unwrap();
        assert_eq!(ok, vec![(2, "ABCDEF1".into()), (4, "XYZ12345".into())]);
        let errors = parse_import("AAAAAA1\nbad code!\nAAAAAA1\nAB\n").unwrap_err();
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.error)).collect();
        assert_eq!(
            got,
            vec![
                (2, "invalid_code"),
                (3, "duplicate_in_file"),
                (4, "code_too_short")
            ]
        );
    }
}
