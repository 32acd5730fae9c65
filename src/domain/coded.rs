//! `coded_enum!`: error enums whose every variant carries a stable machine code (the
//! `"code"` of an API error) declared next to its human message, so the two never drift.

macro_rules! coded_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident {
        $($variant:ident $({ $($f:ident: $t:ty),* })? => $code:literal, $msg:literal;)+
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, thiserror::Error)]
        $vis enum $name { $(#[error($msg)] $variant $({ $($f: $t),* })?,)+ }
        impl $name {
            pub fn code(&self) -> &'static str { match self { $(Self::$variant { .. } => $code,)+ } }
        }
    };
}
pub(crate) use coded_enum;
