//! User namespaces: the user's subordinate id ranges, newuidmap/newgidmap, re-exec.
