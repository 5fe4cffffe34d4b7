//! Provenance. The journal is an append-only, hash-chained record of every model call and every
//! finished render step; `verify` finds the first entry that was edited, deleted, inserted,
//! reordered or cut off. Queries over it answer "why is this here?".

pub mod journal;
pub mod lock;
