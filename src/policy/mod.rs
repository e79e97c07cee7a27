//! Routing policy: path normalization (`normalize`), route patterns
//! (`pattern`), compiled rules (`route`) and the route table (`table`).
//! Everything here is pure: no I/O, so it is unit tested and benchmarked
//! without a server.

pub mod normalize;
pub mod pattern;
pub mod route;
pub mod table;

pub use normalize::{normalize_path, PathError};
pub use pattern::{match_segments, split_path, Pattern};
pub use route::{AuthMode, RouteRule};
pub use table::RouteTable;
