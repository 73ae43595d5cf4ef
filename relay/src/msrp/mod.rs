//! The MSRP wire codec (RFC 4975).
