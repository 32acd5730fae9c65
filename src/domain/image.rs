//! Uploaded images are judged by their bytes, never by the name or Content-Type the client
//! sent: only PNG, JPEG and WebP (no SVG, which can carry script), at most 2 MiB.

pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Webp,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the image is empty")]
    Empty,
    #[error("the image is larger than 2 MiB")]
    TooLarge,
    #[error("only PNG, JPEG and WebP images are accepted")]
    NotAnImage,
}

impl ImageError {
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Empty | ImageError::NotAnImage => "invalid_image",
            ImageError::TooLarge => "image_too_large",
        }
    }
}

impl ImageKind {
    /// Sniffs the magic bytes.
    pub fn sniff(bytes: &[u8]) -> Result<ImageKind, ImageError> {
        if bytes.is_empty() {
            return Err(ImageError::Empty);
        }
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(ImageError::TooLarge);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Ok(ImageKind::Png)
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            Ok(ImageKind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Ok(ImageKind::Webp)
        } else {
            Err(ImageError::NotAnImage)
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Webp => "image/webp",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn images_are_known_by_their_bytes() {
        assert_eq!(
            ImageKind::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Ok(ImageKind::Png)
        );
        assert_eq!(
            ImageKind::sniff(&[0xff, 0xd8, 0xff, 0xe0, 0]),
            Ok(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Ok(ImageKind::Webp)
        );
        assert_eq!(
            ImageKind::sniff(b"<svg onload=alert(1)>"),
            Err(ImageError::NotAnImage)
        );
        assert_eq!(ImageKind::sniff(b"GIF89a"), Err(ImageError::NotAnImage));
        assert_eq!(ImageKind::sniff(b""), Err(ImageError::Empty));
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert_eq!(ImageKind::sniff(&big), Err(ImageError::TooLarge));
    }

    proptest! {
        #[test]
        fn sniffing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ImageKind::sniff(&bytes);
        }
    }
}
