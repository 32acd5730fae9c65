//! A merchant's colours. They are used both ways round: white text sits on them (buttons,
//! the claim page's banner, the top bar, the check-code box) and they are the colour of
//! text (links, the discount, "n left") on the white cards and on the page background. So
//! a colour is refused unless both ways reach WCAG 2's 4.5:1 for normal text (SC 1.4.3, AA);
//! the pages' own defaults meet it too (axe checks them in the browser tests).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandColor(String);

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ColorError {
    #[error("{0}: expected a colour like #c2410c")]
    Format(&'static str),
    #[error(
        "{0}: text in this colour, or white text on it, would be hard to read (contrast {1:.1}:1, needs 4.5:1)"
    )]
    Contrast(&'static str, f64),
}

impl ColorError {
    pub fn code(&self) -> &'static str {
        match self {
            ColorError::Format(_) => "invalid_color",
            ColorError::Contrast(..) => "unreadable_color",
        }
    }
}

/// WCAG 2 AA for normal-size text.
pub const MIN_CONTRAST: f64 = 4.5;

/// The two surfaces the colour meets: white (cards, and the text on
/// the colour) and the consumer pages' background (`--bg` in assets/app.css).
const WHITE: &str = "ffffff";
const PAGE_BACKGROUND: &str = "f4f1ec";

impl BrandColor {
    /// `field` names the setting in the error.
    pub fn parse(field: &'static str, raw: &str) -> Result<BrandColor, ColorError> {
        let hex = raw.trim().to_ascii_lowercase();
        let digits = hex.strip_prefix('#').ok_or(ColorError::Format(field))?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ColorError::Format(field));
        }
        let contrast = worst_contrast(digits);
        if contrast < MIN_CONTRAST {
            return Err(ColorError::Contrast(field, contrast));
        }
        Ok(BrandColor(hex))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The contrast ratio that decides whether the colour is readable (the lower of white
    /// text on it and it on the page background); the settings page shows it.
    pub fn contrast(&self) -> f64 {
        worst_contrast(self.0.get(1..).unwrap_or(""))
    }
}

fn worst_contrast(digits: &str) -> f64 {
    contrast(digits, WHITE).min(contrast(digits, PAGE_BACKGROUND))
}

/// WCAG 2 contrast ratio between two `rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// WCAG 2 relative luminance of `rrggbb` (callers pass six hex digits).
fn luminance(digits: &str) -> f64 {
    let channel = |i: usize| {
        let v = digits
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0) as f64
            / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_colours_pass_and_pale_ones_do_not() {
        assert_eq!(
            BrandColor::parse("brand_color", "#C2410C")
                .unwrap()
                .as_str(),
            "#c2410c"
        );
        assert!(BrandColor::parse("brand_color", "#1f2937").is_ok());
        assert_eq!(
            BrandColor::parse("brand_color", "#ffff00")
                .unwrap_err()
                .code(),
            "unreadable_color"
        );
        assert_eq!(
            BrandColor::parse("brand_color", "#fff").unwrap_err().code(),
            "invalid_color"
        );
        assert_eq!(
            BrandColor::parse("brand_color", "red").unwrap_err().code(),
            "invalid_color"
        );
        assert!((contrast("000000", WHITE) - 21.0).abs() < 0.01);
        assert!((contrast(WHITE, "000000") - 21.0).abs() < 0.01);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 0.01);
    }

    #[test]
    fn text_needs_four_and_a_half_to_one_not_three() {
        // The old default orange: 4.3:1 with white, enough only for large text.
        match BrandColor::parse("brand_color", "#d9480f") {
            Err(ColorError::Contrast(_, ratio)) => assert!((3.0..4.5).contains(&ratio), "{ratio}"),
            other => panic!("#d9480f must be refused: {other:?}"),
        }
        // 4.7:1 with white but only 4.2:1 as link text on the page background.
        assert_eq!(
            BrandColor::parse("accent_color", "#d0430c")
                .unwrap_err()
                .code(),
            "unreadable_color"
        );
        let ok = BrandColor::parse("brand_color", "#0b6e4f").unwrap();
        assert!(ok.contrast() >= MIN_CONTRAST, "{}", ok.contrast());
    }
}
