//! Pure business rules: parsing, limits, windows. No IO lives here, so everything is
//! unit- and property-testable without a database.

pub mod api_key;
pub mod bulk_codes;
pub mod campaign;
mod coded;
pub mod consumer;
pub mod coupon_code;
pub mod image;
pub mod merchant;
pub mod redemption;
pub mod tenant;
pub mod theme;
pub mod token;
pub mod verification;
pub mod webhook;
