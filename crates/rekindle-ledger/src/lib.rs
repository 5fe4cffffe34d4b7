//! Provenance. The journal is an append-only, hash-chained record of every model call and every
//! finished render step ([`record`] owns its format, [`recorder`] writes it during a render);
//! `verify` finds the first entry that was edited, deleted, inserted, reordered or cut off.
//! Queries over it and the build answer "why is this here?" ([`why`](mod@why)), pin a build in
//! `rekindle.lock` ([`lock`]) and describe it as an in-toto statement ([`attest`]).

pub mod attest;
pub mod conversation;
pub mod journal;
pub mod lock;
pub mod record;
pub mod recorder;
pub mod why;
