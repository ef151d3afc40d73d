//! The subscriber layer as users see it: span trees, sampling, fields,
//! errors, links, and log lines stamped with the ids.

mod logs;
mod spans;
mod support;
