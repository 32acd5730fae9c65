//! Coupon codes: random generation in a tenant-chosen format, and forgiving
//! parsing of what people actually type (lower case, dashes, full-width input
//! from Japanese IMEs) into one canonical form used for storage and lookup.

use std::{fmt, str::FromStr};

use rand::{seq::SliceRandom, Rng};
use serde::{Deserialize, Serialize};

use super::coded::coded_enum;

/// 0/O and 1/I/L are left out: they get misread on receipts and over the phone.
const UNAMBIGUOUS: &str = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const MAX_CODE_CHARS: usize = 64;

coded_enum! {
    #[derive(Copy, Eq, Hash)]
    pub enum CodeError {
        Empty => "invalid_code", "code must not be empty";
        TooLong => "invalid_code", "code must be at most 64 characters";
        InvalidCharacter => "invalid_code", "code may only contain letters A-Z and digits 0-9";
        InvalidLength => "invalid_code_length", "length must be between 6 and 32";
        InvalidPrefix => "invalid_code_prefix", "prefix must be at most 8 characters of A-Z and 0-9";
        InvalidCharset => "invalid_charset",
            "charset must be 10 to 64 distinct characters of A-Z and 0-9";
    }
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A validated custom alphabet. Only 36 characters qualify, so the 64 upper
/// bound exists for symmetry with the code length limit, not as a real cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomCharset(String);

impl CustomCharset {
    pub fn parse(chars: &str) -> Result<CustomCharset, CodeError> {
        let mut seen = [false; 128];
        let len = chars.chars().count();
        let ok = (10..=64).contains(&len)
            && chars.chars().all(|c| {
                // `is_code_char` guarantees ASCII, so the index is in bounds.
                is_code_char(c) && !std::mem::replace(&mut seen[c as usize], true)
            });
        ok.then(|| CustomCharset(chars.to_owned()))
            .ok_or(CodeError::InvalidCharset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Charset {
    #[default]
    Unambiguous,
    Digits,
    Custom(CustomCharset),
}

impl Charset {
    pub fn custom(chars: &str) -> Result<Charset, CodeError> {
        CustomCharset::parse(chars).map(Charset::Custom)
    }

    /// From a setting: `unambiguous`, `digits`, or the characters themselves (which is
    /// also how a charset is stored).
    pub fn parse(setting: &str) -> Result<Charset, CodeError> {
        match setting {
            "unambiguous" | UNAMBIGUOUS => Ok(Charset::Unambiguous),
            "digits" | DIGITS => Ok(Charset::Digits),
            chars => Charset::custom(chars),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Charset::Unambiguous => UNAMBIGUOUS,
            Charset::Digits => DIGITS,
            Charset::Custom(c) => &c.0,
        }
    }
}

/// How a campaign's codes look: `prefix` followed by `length` random characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFormat {
    length: usize,
    prefix: String,
    charset: Charset,
}

impl Default for CodeFormat {
    fn default() -> Self {
        // 31^10 ≈ 8e14 codes: guessing a valid one is hopeless even for big campaigns.
        CodeFormat {
            length: 10,
            prefix: String::new(),
            charset: Charset::default(),
        }
    }
}

impl CodeFormat {
    pub fn new(length: usize, prefix: &str, charset: Charset) -> Result<CodeFormat, CodeError> {
        if !(6..=32).contains(&length) {
            return Err(CodeError::InvalidLength);
        }
        if prefix.len() > 8 || !prefix.chars().all(is_code_char) {
            return Err(CodeError::InvalidPrefix);
        }
        let prefix = prefix.to_owned();
        Ok(CodeFormat {
            length,
            prefix,
            charset,
        })
    }

    pub fn length(&self) -> usize {
        self.length
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn charset(&self) -> &Charset {
        &self.charset
    }

    /// Uniqueness is the database's job (unique index per tenant); callers
    /// retry on conflict, so this only has to be uniformly random.
    pub fn generate<R: Rng + ?Sized>(&self, rng: &mut R) -> CouponCode {
        let alphabet = self.charset.as_str().as_bytes();
        let mut code = String::with_capacity(self.prefix.len() + self.length);
        code.push_str(&self.prefix);
        // `choose` only returns None for an empty alphabet, which parsing rules out.
        code.extend((0..self.length).filter_map(|_| alphabet.choose(rng).map(|&b| char::from(b))));
        CouponCode(code)
    }
}

/// A code in canonical form: 1 to 64 characters of `[A-Z0-9]`, no separators.
/// `as_str` is what gets stored and compared; `Display` is for humans.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CouponCode(String);

/// Dashes people (and IMEs) produce instead of ASCII '-': hyphen..horizontal
/// bar, minus sign, katakana prolonged sound mark (full and half width).
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF70}'
    )
}

/// Maps full-width ASCII (U+FF01..U+FF5E, including U+FF0D '－') to ASCII.
fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

impl CouponCode {
    pub fn parse(input: &str) -> Result<CouponCode, CodeError> {
        let mut code = String::new();
        for c in input.chars().map(half_width) {
            // `is_whitespace` covers the ideographic space U+3000 as well.
            if c.is_whitespace() || is_dash(c) {
                continue;
            }
            let c = c.to_ascii_uppercase();
            if !is_code_char(c) {
                return Err(CodeError::InvalidCharacter);
            }
            if code.len() == MAX_CODE_CHARS {
                return Err(CodeError::TooLong);
            }
            code.push(c);
        }
        if code.is_empty() {
            return Err(CodeError::Empty);
        }
        Ok(CouponCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Groups of four joined by '-', e.g. `ABCD-EFGH-JK`, easier to read aloud.
    pub fn display_grouped(&self) -> String {
        let groups: Vec<&str> = self
            .0
            .as_bytes()
            .chunks(4)
            .filter_map(|g| std::str::from_utf8(g).ok())
            .collect();
        groups.join("-")
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_grouped())
    }
}

impl FromStr for CouponCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CouponCode::parse(s)
    }
}

impl TryFrom<String> for CouponCode {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CouponCode::parse(&s)
    }
}

impl From<CouponCode> for String {
    fn from(code: CouponCode) -> String {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::StdRng, SeedableRng};

    fn parsed(s: &str) -> Result<String, &'static str> {
        CouponCode::parse(s)
            .map(|c| c.as_str().to_owned())
            .map_err(|e| e.code())
    }

    #[test]
    fn normalizes_what_people_type() {
        for (input, want) in [
            ("abcd-efgh", "ABCDEFGH"),
            (" AbCd efGH \n", "ABCDEFGH"),
            ("ＡＢＣ１２３", "ABC123"),
            ("ａｂｃ\u{3000}１２３", "ABC123"),
            ("AB\u{2010}CD\u{2014}EF\u{2015}GH", "ABCDEFGH"),
            ("AB\u{2212}CD\u{30FC}EF\u{FF0D}GH\u{FF70}JK", "ABCDEFGHJK"),
        ] {
            assert_eq!(parsed(input).as_deref(), Ok(want), "{input:?}");
        }
        assert_eq!(parsed(&"A".repeat(64)).map(|s| s.len()), Ok(64));
        for bad in ["", " -　", "ABC!", "ÄBC", "AB_C", "ＡＢ！", "ABC\u{0}"] {
            assert_eq!(parsed(bad), Err("invalid_code"), "{bad:?}");
        }
        assert_eq!(CouponCode::parse(&"A".repeat(65)), Err(CodeError::TooLong));
        assert_eq!(CouponCode::parse("-"), Err(CodeError::Empty));
    }

    #[test]
    fn display_groups_by_four_but_storage_is_canonical() {
        let code = CouponCode::parse("abcdefghjk").unwrap();
        assert_eq!(
            (code.as_str(), code.to_string()),
            ("ABCDEFGHJK", "ABCD-EFGH-JK".into())
        );
        assert_eq!(CouponCode::parse("ABCD").unwrap().to_string(), "ABCD");
        assert_eq!(code.to_string().parse(), Ok(code.clone()));
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""ABCDEFGHJK""#);
        assert_eq!(
            serde_json::from_str::<CouponCode>(r#""abcd-efgh-jk""#).unwrap(),
            code
        );
        assert!(serde_json::from_str::<CouponCode>(r#""abc!""#).is_err());
    }

    #[test]
    fn format_and_charset_validation() {
        assert_eq!(UNAMBIGUOUS.len(), 31);
        assert!(!UNAMBIGUOUS.contains(['0', 'O', '1', 'I', 'L']));
        let d = CodeFormat::default();
        assert_eq!(
            (d.length(), d.prefix(), d.charset()),
            (10, "", &Charset::Unambiguous)
        );
        assert!(CodeFormat::new(6, "", Charset::Digits).is_ok());
        assert!(CodeFormat::new(32, "ABCD1234", Charset::default()).is_ok());
        let err = |len, prefix| {
            CodeFormat::new(len, prefix, Charset::Digits)
                .unwrap_err()
                .code()
        };
        assert_eq!(
            (err(5, ""), err(33, "")),
            ("invalid_code_length", "invalid_code_length")
        );
        for prefix in ["ABCD12345", "ab", "A-B", "Ａ"] {
            assert_eq!(err(10, prefix), "invalid_code_prefix", "{prefix}");
        }
        assert!(Charset::custom("ABCDEFGHJK").is_ok());
        assert!(Charset::custom("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").is_ok());
        for bad in [
            "ABCDEFGHJ",
            "ABCDEFGHJA",
            "abcdefghjk",
            "ABCDEFGHJ-",
            "ＡBCDEFGHJK",
            "",
        ] {
            assert_eq!(
                Charset::custom(bad).unwrap_err().code(),
                "invalid_charset",
                "{bad}"
            );
        }
    }

    #[test]
    fn generation_uses_the_whole_alphabet() {
        let mut rng = StdRng::seed_from_u64(1);
        let format = CodeFormat::new(32, "X", Charset::Digits).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            seen.extend(format.generate(&mut rng).as_str()[1..].chars());
        }
        assert_eq!(seen.into_iter().collect::<String>(), DIGITS);
    }

    fn any_format() -> impl Strategy<Value = CodeFormat> {
        let charset = prop_oneof![
            Just(Charset::Unambiguous),
            Just(Charset::Digits),
            Just(Charset::custom("QWERTYUPAS3456").unwrap()),
        ];
        (6usize..=32, "[A-Z0-9]{0,8}", charset)
            .prop_map(|(len, prefix, cs)| CodeFormat::new(len, &prefix, cs).unwrap())
    }

    proptest! {
        #[test]
        fn generated_codes_survive_sloppy_typing(format in any_format(), seed: u64,
                                                 noise in prop::collection::vec((0usize..8, any::<bool>()), 40)) {
            let code = format.generate(&mut StdRng::seed_from_u64(seed));
            let body = &code.as_str()[format.prefix().len()..];
            prop_assert!(code.as_str().starts_with(format.prefix()));
            prop_assert_eq!(body.len(), format.length());
            prop_assert!(body.chars().all(|c| format.charset().as_str().contains(c)));
            let separators = ["", "", "-", " ", "\u{3000}", "\u{30FC}", "\u{FF0D}", "\u{2212}"];
            let typed: String = code.as_str().chars().zip(noise).map(|(c, (sep, wide))| {
                let c = if wide { char::from_u32(u32::from(c) + 0xFEE0).unwrap() } else { c };
                format!("{}{}", separators[sep], c.to_lowercase())
            }).collect();
            prop_assert_eq!(CouponCode::parse(&typed), Ok(code));
        }

        #[test]
        fn parse_never_panics_and_is_canonical(
            input in prop_oneof![any::<String>(), "[a-zA-Z0-9 \\-\u{3000}\u{30FC}\u{FF10}-\u{FF5A}!]{0,80}"]
        ) {
            if let Ok(code) = CouponCode::parse(&input) {
                prop_assert!((1..=64).contains(&code.as_str().len()));
                prop_assert!(code.as_str().chars().all(is_code_char));
                prop_assert_eq!(CouponCode::parse(code.as_str()), Ok(code.clone()));
                prop_assert_eq!(CouponCode::parse(&code.to_string()), Ok(code));
            }
        }
    }
}
