//! The engagement service (being written).
