//! What a data subject may ask of the trail: a copy of every event about them, with proofs
//! (GDPR Art. 15 and 20, [`export`]), and their erasure (Art. 17, [`erasure`]). Both find the
//! subject's events through the store's ordinary filters, so that pseudonymised identifiers
//! are matched the way queries match them.

mod erasure;
mod export;

pub use erasure::*;
pub use export::*;
