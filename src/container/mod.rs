//! Persistent container records and their state, stored atomically per user.
