//! Secret newtypes in oauth2's manner: `Debug` prints `[redacted]`, there is no `Display`,
//! equality takes constant time, and `secret()` is the one way to the text.

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(secret: String) -> Self {
                Self(secret)
            }

            /// The token itself, for the one header or form field that carries it.
            pub fn secret(&self) -> &String {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        /// In constant time, as secrets are compared.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}
    };
}

pub(crate) use secret_type;

secret_type!(
    /// The PKCE verifier a consent keeps until its callback.
    PkceVerifier
);
