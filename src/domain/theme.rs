//! A merchant's colours. White text sits on the brand colour (buttons, the claim page's
//! banner), so a colour too light for it to be read is refused: WCAG 2 asks for a
//! contrast of at least 3:1 for large, bold text like ours.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandColor(String);

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ColorError {
    #[error("{0}: expected a colour like #d9480f")]
    Format(&'static str),
    #[error("{0}: white text on this colour would be hard to read (contrast {1:.1}:1, needs 3:1)")]
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

const MIN_CONTRAST: f64 = 3.0;

impl BrandColor {
    /// `field` names the setting in the error.
    pub fn parse(field: &'static str, raw: &str) -> Result<BrandColor, ColorError> {
        let hex = raw.trim().to_ascii_lowercase();
        let digits = hex.strip_prefix('#').ok_or(ColorError::Format(field))?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ColorError::Format(field));
        }
        let contrast = contrast_with_white(digits);
        if contrast < MIN_CONTRAST {
            return Err(ColorError::Contrast(field, contrast));
        }
        Ok(BrandColor(hex))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// WCAG 2 contrast ratio of white against `rrggbb`.
fn contrast_with_white(digits: &str) -> f64 {
    let channel = |i: usize| {
        let v = u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0) as f64 / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    1.05 / (luminance + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_colours_pass_and_pale_ones_do_not() {
        assert_eq!(
            BrandColor::parse("brand_color", "#D9480F")
                .unwrap()
                .as_str(),
            "#d9480f"
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
        assert!((contrast_with_white("000000") - 21.0).abs() < 0.01);
        assert!((contrast_with_white("ffffff") - 1.0).abs() < 0.01);
    }
}
