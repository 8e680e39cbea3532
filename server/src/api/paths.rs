//! Network names may hold `/` (Docker allows it), and Docker's router takes the rest of the
//! path as the name: `GET /networks/a/b` is network `a/b`, `POST /networks/x/connect/connect`
//! connects to network `x/connect`. Our routes take one path segment, so such paths are
//! rewritten before routing with the name's slashes percent-encoded (`a%2Fb`), which the
//! handlers' `Path` decodes back.

use axum::http::Method;

/// The path Docker's router would give the same meaning, when it differs from `path`.
pub fn rewrite(method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/networks/")?;
    if rest.is_empty() {
        // Docker serves the list on `/networks/` too.
        return (method == Method::GET || method == Method::HEAD).then(|| "/networks".to_string());
    }
    let (name, action) = if method == Method::POST {
        // The action is the last segment; everything before it is the name.
        ["/connect", "/disconnect"]
            .iter()
            .find_map(|a| rest.strip_suffix(a).map(|name| (name, *a)))?
    } else if [Method::GET, Method::HEAD, Method::DELETE].contains(method) {
        (rest, "")
    } else {
        return None;
    };
    name.contains('/')
        .then(|| format!("/networks/{}{action}", name.replace('/', "%2F")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_become_one_segment() {
        let r = |m: Method, p: &str| rewrite(&m, p);
        assert_eq!(
            r(Method::GET, "/networks/a/b").as_deref(),
            Some("/networks/a%2Fb")
        );
        assert_eq!(
            r(Method::DELETE, "/networks/a/b/c").as_deref(),
            Some("/networks/a%2Fb%2Fc")
        );
        assert_eq!(
            r(Method::GET, "/networks/a/").as_deref(),
            Some("/networks/a%2F")
        );
        assert_eq!(
            r(Method::POST, "/networks/x/connect/connect").as_deref(),
            Some("/networks/x%2Fconnect/connect")
        );
        assert_eq!(
            r(Method::POST, "/networks/a/b/disconnect").as_deref(),
            Some("/networks/a%2Fb/disconnect")
        );
        assert_eq!(r(Method::GET, "/networks/").as_deref(), Some("/networks"));
        // Already one segment, or no route Docker has: unchanged.
        assert_eq!(r(Method::POST, "/networks/x/connect"), None);
        assert_eq!(r(Method::POST, "/networks/a/b"), None);
        assert_eq!(r(Method::GET, "/networks/a%2Fb"), None);
        assert_eq!(r(Method::GET, "/networks"), None);
        assert_eq!(r(Method::PUT, "/networks/a/b"), None);
    }
}
