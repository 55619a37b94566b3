//! `-u user[:group]` resolved against the container's own /etc/passwd and /etc/group, with
//! docker's rules: names or numbers; a number not in passwd is used as is (gid 0, HOME=/);
//! a name not in passwd is an error; supplementary groups are the groups listing the user
//! (none when a group is given explicitly).

/// The identity the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
        })
    })
}

/// A user or group given as a number: `Ok(None)` for a name, an error for a number that
/// is no id (negative, or above u32; 4294967295 is refused against the id maps).
fn number(what: &str, s: &str) -> Result<Option<u32>, String> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!(
            "invalid {what} {s}: use a name or a number from 0 to 4294967294"
        )),
    }
}

/// A `--group-add` group: a number, or a name of the container's /etc/group.
pub fn group_id(g: &str, group: &str) -> Result<u32, String> {
    if let Some(n) = number("group", g)? {
        return Ok(n);
    }
    group_entries(group)
        .find(|e| e.name == g)
        .map(|e| e.gid)
        .ok_or_else(|| format!("--group-add {g}: no such group in the container's /etc/group"))
}

/// `--user`'s numeric uid and gid checked against the container's id maps, so that
/// `box create` refuses what its start would (names are resolved, and checked, at start).
pub fn check_numeric(spec: &str, maps: &crate::userns::IdMaps) -> Result<(), String> {
    let (user, grp) = spec.split_once(':').unwrap_or((spec, ""));
    let uid = number("user", user)?.unwrap_or(0);
    let gid = number("group", grp)?.unwrap_or(0);
    maps.check_identity(uid, gid, &[])
        .map_err(|e| e.to_string())
}

/// Resolve `spec` ("" = root). `passwd`/`group` are the container's files ("" if absent).
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<Identity, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let numeric = number("user", user)?;
    let entry = passwd_entries(passwd).find(|e| match numeric {
        Some(n) => e.uid == n,
        None => e.name == user,
    });
    let (uid, mut gid, home, name) = match (entry, numeric) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name)),
        (None, Some(n)) => (n, 0, "/".to_string(), None),
        (None, None) => {
            return Err(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ));
        }
    };
    if let Some(g) = grp.filter(|g| !g.is_empty()) {
        gid = match number("group", g)? {
            Some(n) => n,
            None => group_entries(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| {
                    format!("unable to find group {g}: no matching entries in group file")
                })?,
        };
    }
    // As runc: the groups listing the user, unless a group was given explicitly.
    let mut groups = Vec::new();
    if let (Some(name), None | Some("")) = (name, grp) {
        for e in group_entries(group) {
            if e.members.contains(&name) && !groups.contains(&e.gid) {
                groups.push(e.gid);
            }
        }
    }
    let home = if home.is_empty() {
        "/".to_string()
    } else {
        home
    };
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:2:2:daemon:/sbin:/sbin/nologin\n\
        guest:x:405:100:guest:/dev/null:/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:root\nwheel:x:10:root,app\nusers:x:100:games\n\
        app:x:1000:\naudio:x:18:app\n";

    #[test]
    fn root_by_default() {
        let id = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (0, 0, "/root"));
        assert_eq!(id.groups, [0, 10]);
    }

    #[test]
    fn names_numbers_and_groups() {
        let id = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(id.groups, [10, 18]);
        assert_eq!(id.home, "/home/app");
        let id = resolve("1000:audio", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid), (1000, 18));
        assert!(id.groups.is_empty());
        let id = resolve("4242:4343", PASSWD, GROUP).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (4242, 4343, "/"));
        assert!(id.groups.is_empty());
        let id = resolve("4242", "", "").unwrap();
        assert_eq!((id.uid, id.gid), (4242, 0));
    }

    #[test]
    fn unknown_names_fail() {
        assert!(resolve("nobody-here", PASSWD, GROUP).is_err());
        assert!(resolve("app:nogroup", PASSWD, GROUP).is_err());
    }

    #[test]
    fn numbers_that_are_no_ids_fail() {
        // A passwd line naming "-1" does not make it a name.
        let passwd = format!("{PASSWD}-1:x:5:5::/:/bin/sh\n");
        for bad in ["-1", "4294967296", "0:-1", "app:99999999999", "-0"] {
            let e = resolve(bad, &passwd, GROUP).unwrap_err();
            assert!(e.starts_with("invalid "), "{bad}: {e}");
            assert!(e.contains("0 to 4294967294"), "{bad}: {e}");
        }
        // 4294967295 is a number: refused by the id maps, not here.
        assert_eq!(resolve("4294967295", "", "").unwrap().uid, u32::MAX);
    }

    #[test]
    fn numeric_users_checked_against_the_maps() {
        use crate::userns::{IdMap, IdMaps};
        let m = vec![IdMap {
            container: 0,
            host: 1000,
            size: 65537,
        }];
        let maps = IdMaps {
            uid: m.clone(),
            gid: m,
            root: false,
        };
        for ok in ["", "0", "65536:65536", "app", "app:wheel", "0:", ":10"] {
            assert_eq!(check_numeric(ok, &maps), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("4294967295", "uid 4294967295 is not mapped"),
            ("0:4294967295", "gid 4294967295 is not mapped"),
            ("app:70000", "gid 70000 is not mapped"),
            ("-1", "invalid user -1"),
        ] {
            let e = check_numeric(bad, &maps).unwrap_err();
            assert!(e.starts_with(needle), "{bad}: {e}");
        }
    }
}
