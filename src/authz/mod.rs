//! Authorization: a pure decision over a route's requirements and the
//! caller's identity (DESIGN.md §3 routes, §10 matching). No I/O.
//!
//! - `roles`: any of. Without `org_param` they are the user's global roles;
//!   with it, the caller's role in that org, hierarchical (owner > admin >
//!   member > viewer). `superuser` passes every role check.
//! - `permissions`: all of, derived from `[rbac.roles]` for the same roles
//!   (`*`, `*:read`, `users:*` wildcards).
//! - `scopes`: all of, from the token's `scope` claim.
//! - `org_param`: the caller must belong to the org named in the path.
//! - `mfa`: the token's `amr` must contain `otp`.
//!
//! An org-bound API key is authorized in its org only (`authorize_in` with
//! `pinned`): its role is the owner's current role there, whether or not
//! the route has `org_param`, and a path naming another org is refused.
pub use crate::schema::roles::RoleTable;

use crate::principal::{OrgId, OrgRole, UserIdentity};
use crate::schema::roles;

pub use crate::error::refusals::Denial;

/// What a route asks of its caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub scopes: Vec<String>,
    pub org_param: Option<String>,
    pub mfa: bool,
}

impl Requirements {
    pub fn is_empty(&self) -> bool {
        *self == Requirements::default()
    }

    /// Config mistakes in these requirements.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.org_param.is_some() {
            for role in &self.roles {
                if OrgRole::parse(role).is_none() && role != "superuser" {
                    out.push(format!(
                        "{role:?} is not an org role (viewer, member, admin, owner) and the route has org_param"
                    ));
                }
            }
        }
        for perm in &self.permissions {
            if !roles::is_concrete_permission(perm) {
                out.push(format!(
                    "required permission {perm:?} must look like \"resource:action\" without wildcards"
                ));
            }
        }
        out
    }
}

/// The org a request was authorized against, forwarded as `X-Auth-Org-Id`
/// and `X-Auth-Org-Role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgContext {
    pub id: OrgId,
    pub role: Option<OrgRole>,
}

/// Decides whether `user` may make a request with `req`'s requirements.
/// `org_in_path` is the value captured by the route's `org_param`.
pub fn authorize(
    req: &Requirements,
    user: &UserIdentity,
    org_in_path: Option<&str>,
    rbac: &RoleTable,
) -> Result<Option<OrgContext>, Denial> {
    authorize_in(req, user, org_in_path, None, rbac)
}

/// `authorize` for a caller that may be `pinned` to one org.
pub fn authorize_in(
    req: &Requirements,
    user: &UserIdentity,
    org_in_path: Option<&str>,
    pinned: Option<OrgId>,
    rbac: &RoleTable,
) -> Result<Option<OrgContext>, Denial> {
    if req.mfa && !user.amr.iter().any(|m| m == "otp") {
        return Err(Denial::MfaRequired);
    }
    let in_path = match (&req.org_param, org_in_path) {
        (Some(_), Some(raw)) => Some(
            uuid::Uuid::parse_str(raw)
                .map(OrgId)
                .map_err(|_| Denial::NotOrgMember)?,
        ),
        // The route requires a tenant but the capture is missing: refuse.
        (Some(_), None) => return Err(Denial::NotOrgMember),
        (None, _) => None,
    };
    let org = match (pinned, in_path) {
        (Some(pin), Some(id)) if pin != id => return Err(Denial::NotOrgMember),
        (Some(id), _) | (None, Some(id)) => {
            let role = user.orgs.get(&id).copied();
            if role.is_none() && !user.superuser {
                return Err(Denial::NotOrgMember);
            }
            Some(OrgContext { id, role })
        }
        (None, None) => None,
    };

    if !req.roles.is_empty() && !user.superuser {
        let allowed = match org {
            Some(OrgContext {
                role: Some(have), ..
            }) => req
                .roles
                .iter()
                .filter_map(|r| OrgRole::parse(r))
                .any(|need| have >= need),
            Some(OrgContext { role: None, .. }) => false,
            None => req.roles.iter().any(|r| user.roles.contains(r)),
        };
        if !allowed {
            return Err(Denial::InsufficientRole);
        }
    }

    if !user.superuser {
        for perm in &req.permissions {
            let granted = match org {
                Some(OrgContext {
                    role: Some(role), ..
                }) => rbac.org_role_grants(role, perm),
                Some(OrgContext { role: None, .. }) => false,
                None => user.roles.iter().any(|r| rbac.role_grants(r, perm)),
            };
            if !granted {
                return Err(Denial::MissingPermission(perm.clone()));
            }
        }
    }

    for scope in &req.scopes {
        if !user.scopes.contains(scope) {
            return Err(Denial::MissingScope(scope.clone()));
        }
    }
    Ok(org)
}

#[cfg(test)]
mod tests;
