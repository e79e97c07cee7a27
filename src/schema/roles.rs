//! `[rbac.roles]`: role name → permission patterns, with the org role
//! hierarchy applied (a role also holds the permissions of the roles below).

use std::collections::{BTreeMap, HashMap};

use crate::principal::OrgRole;

#[derive(Debug, Clone, Default)]
pub struct RoleTable {
    grants: HashMap<String, Vec<String>>,
}

/// `resource:action` with no wildcard: what a route may require.
pub fn is_concrete_permission(p: &str) -> bool {
    matches!(p.split_once(':'), Some((r, a)) if !r.is_empty() && !a.is_empty() && !p.contains('*') && !a.contains(':'))
}

fn is_permission_pattern(p: &str) -> bool {
    p == "*"
        || matches!(p.split_once(':'), Some((r, a)) if !r.is_empty() && !a.is_empty() && !a.contains(':'))
}

/// Whether a granted pattern (`*`, `*:read`, `users:*`, `users:read`)
/// covers a required permission.
pub fn pattern_grants(granted: &str, required: &str) -> bool {
    if granted == "*" {
        return true;
    }
    match (granted.split_once(':'), required.split_once(':')) {
        (Some((gr, ga)), Some((rr, ra))) => (gr == "*" || gr == rr) && (ga == "*" || ga == ra),
        _ => false,
    }
}

impl RoleTable {
    /// Validates the table; errors are (role, message).
    pub fn new(roles: &BTreeMap<String, Vec<String>>) -> Result<RoleTable, Vec<(String, String)>> {
        let mut errors = Vec::new();
        for (role, perms) in roles {
            if role.is_empty() {
                errors.push((role.clone(), "role names must not be empty".into()));
            }
            for perm in perms {
                if !is_permission_pattern(perm) {
                    errors.push((
                        role.clone(),
                        format!("{perm:?} is not \"*\" or \"resource:action\" (either part may be \"*\")"),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut grants: HashMap<String, Vec<String>> =
            roles.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // Org roles inherit the permissions of every role below them.
        for role in OrgRole::ALL {
            let mut inherited: Vec<String> = OrgRole::ALL
                .into_iter()
                .filter(|lower| *lower < role)
                .filter_map(|lower| roles.get(lower.as_str()))
                .flatten()
                .cloned()
                .collect();
            if let Some(own) = roles.get(role.as_str()) {
                inherited.extend(own.iter().cloned());
            }
            if !inherited.is_empty() {
                inherited.sort();
                inherited.dedup();
                grants.insert(role.as_str().to_string(), inherited);
            }
        }
        Ok(RoleTable { grants })
    }

    pub fn role_grants(&self, role: &str, permission: &str) -> bool {
        self.grants
            .get(role)
            .is_some_and(|perms| perms.iter().any(|g| pattern_grants(g, permission)))
    }

    pub fn org_role_grants(&self, role: OrgRole, permission: &str) -> bool {
        self.role_grants(role.as_str(), permission)
    }
}
