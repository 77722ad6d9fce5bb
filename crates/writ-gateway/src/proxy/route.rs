//! Routing, the request path's first step: the route for a request's host and path.

use super::{Live, Table};

impl Table {
    /// The route for `host` (the `Host` header without its port) and `path`: among the
    /// routes for that host or for any host, the one with the longest `path_prefix` that
    /// `path` equals or lies under (`/pay` takes `/pay` and `/pay/x`, not `/payroll`); a
    /// route that names the host wins over one that does not.
    pub(super) fn route_for(&self, host: Option<&str>, path: &str) -> Option<&Live> {
        self.routes
            .iter()
            .filter(|l| {
                l.route
                    .host
                    .as_deref()
                    .is_none_or(|h| host.is_some_and(|x| h.eq_ignore_ascii_case(x)))
            })
            .filter(|l| {
                let p = l.route.path_prefix.as_str();
                path == p
                    || (path.starts_with(p)
                        && (p.ends_with('/') || path[p.len()..].starts_with('/')))
            })
            .max_by_key(|l| (l.route.host.is_some(), l.route.path_prefix.len()))
    }
}
