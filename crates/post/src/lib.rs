//! The post service (being written).
