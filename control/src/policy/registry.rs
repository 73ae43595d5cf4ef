//! A user's devices as the registration event package reports them
//! (seed 001 §8.1.2, PF-REGINFO).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::PolicyError;

/// A CPM feature a client declares in its registration (feature tags /
/// IARI / ICSI in the Contact). Seed 001 §6.6 lists what suitability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// CPM Session (chat).
    Chat,
    /// CPM File Transfer.
    FileTransfer,
    /// Large Message Mode standalone message.
    LargeMessage,
    /// Pager Mode standalone message.
    Pager,
    /// Delivery of deferred messages.
    Deferred,
    /// System messages.
    SystemMessages,
    /// The legacy SMS/MMS services under the primary identity: the mark of a
    /// Primary Device (seed 001 §3.2, CPM-MLD-027).
    LegacyMessaging,
}

/// Whether the device's network connectivity permits CPM requests now
/// (seed 001 §6.6, second condition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connectivity {
    /// CPM requests can be delivered.
    #[default]
    Cpm,
    /// Only interworked requests (e.g. SMS) can reach it; meaningful for
    /// the Primary Device.
    InterworkedOnly,
    /// Nothing can be delivered now.
    None,
}

/// One registered (or known but unregistered) client of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Device {
    /// `+sip.instance` of the contact (RFC 5626 §4.1), e.g.
    /// `<urn:gsma:imei:35209900-176148-1>`; the device's stable identity.
    pub instance_id: String,
    /// Public GRUU (RFC 5627), the Request-URI of the forked INVITE (seed
    /// 003 §8.3.2.1.1 6.b.ii).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gruu: Option<String>,
    /// Human-readable device name, shown to the user (CPM-MLD-015).
    pub name: String,
    /// Explicitly flagged primary by the front end (see [`Registry`]).
    #[serde(default)]
    pub primary: bool,
    /// Declared capabilities.
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
    /// Has an active registration (reginfo contact state `active`).
    #[serde(default = "yes")]
    pub registered: bool,
    /// Connectivity now.
    #[serde(default)]
    pub connectivity: Connectivity,
}

fn yes() -> bool {
    true
}

/// The registration event information of one user: a whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Registration {
    /// The user's address (public user identity / CPM Address).
    pub user: String,
    /// reginfo `version` (RFC 3680); must grow.
    pub version: u64,
    /// All devices, in the order the front end lists them (that order is
    /// kept and used as the tie-breaker everywhere).
    pub devices: Vec<Device>,
}

/// What is stored for a user: the devices and which one is primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDevices {
    /// Version of the stored registration.
    pub version: u64,
    /// Devices in registration order.
    pub devices: Vec<Device>,
    /// Instance id of the Primary Device, if one could be identified.
    pub primary: Option<String>,
}

impl UserDevices {
    /// Is this instance the primary device?
    pub fn is_primary(&self, instance_id: &str) -> bool {
        self.primary.as_deref() == Some(instance_id)
    }
}

/// Bounds on what the registry stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    /// Users stored at most.
    pub max_users: usize,
    /// Devices per user at most.
    pub max_devices_per_user: usize,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        RegistryLimits {
            max_users: 100_000,
            max_devices_per_user: 16,
        }
    }
}

/// Registration event information per user (PF-REGINFO).
///
/// **Primary device (CPM-MLD-027).** Seed 001 §6.6 says the distinction is
/// made from what each client provides in its registration, and §3.2 that
/// the Primary Device holds the UICC of the subscription and supports the
/// legacy SMS/MMS services. The front end sees the registration (the
/// IMEI-based `+sip.instance`, the telephony feature tag) so the rule is:
///
/// 1. a device with `primary: true` is the primary; two such devices are an
///    error ([`PolicyError::MultiplePrimaries`]);
/// 2. else the one device with [`Capability::LegacyMessaging`] is the
///    primary;
/// 3. else (none, or several with that capability) no device is primary:
///    the seed says a primary MAY be identified, and guessing wrong would
///    route interworked SMS to a tablet.
///
/// Unregistered devices may be primary: interworked requests (SMS) reach a
/// phone whether or not its CPM client is registered.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    limits: RegistryLimits,
    users: BTreeMap<String, UserDevices>,
}

impl Registry {
    /// New bounds (a reload); registrations over them stay until renewed.
    pub fn set_limits(&mut self, limits: RegistryLimits) {
        self.limits = limits;
    }

    /// An empty registry with these bounds.
    pub fn new(limits: RegistryLimits) -> Self {
        Registry {
            limits,
            users: BTreeMap::new(),
        }
    }

    /// Stores a user's registration, replacing the previous one wholesale
    /// (seed 001 §8.1.2 step 3): devices absent from the new document are
    /// gone. Returns the stored entry.
    pub fn register(&mut self, reg: Registration) -> Result<&UserDevices, PolicyError> {
        if let Some(old) = self.users.get(&reg.user)
            && reg.version <= old.version
        {
            return Err(PolicyError::StaleRegistration {
                user: reg.user,
                stored: old.version,
                got: reg.version,
            });
        }
        if !self.users.contains_key(&reg.user) && self.users.len() >= self.limits.max_users {
            return Err(PolicyError::Limit(format!(
                "{} users",
                self.limits.max_users
            )));
        }
        if reg.devices.len() > self.limits.max_devices_per_user {
            return Err(PolicyError::Limit(format!(
                "{} devices per user, got {}",
                self.limits.max_devices_per_user,
                reg.devices.len()
            )));
        }
        let mut seen = BTreeSet::new();
        for d in &reg.devices {
            if d.instance_id.trim().is_empty() {
                return Err(PolicyError::EmptyInstance);
            }
            if !seen.insert(d.instance_id.as_str()) {
                return Err(PolicyError::DuplicateInstance(d.instance_id.clone()));
            }
            if d.name.trim().is_empty() {
                return Err(PolicyError::MissingDeviceName(d.instance_id.clone()));
            }
        }
        let primary = identify_primary(&reg.devices)?;
        let entry = UserDevices {
            version: reg.version,
            devices: reg.devices,
            primary,
        };
        Ok(match self.users.entry(reg.user) {
            Entry::Occupied(mut slot) => {
                slot.insert(entry);
                slot.into_mut()
            }
            Entry::Vacant(slot) => slot.insert(entry),
        })
    }

    /// The stored devices of a user.
    pub fn get(&self, user: &str) -> Result<&UserDevices, PolicyError> {
        self.users
            .get(user)
            .ok_or_else(|| PolicyError::UnknownUser(user.to_owned()))
    }

    /// Forgets a user (subscription terminated). Returns whether it existed.
    pub fn remove(&mut self, user: &str) -> bool {
        self.users.remove(user).is_some()
    }

    /// Number of users stored.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// No user stored.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn identify_primary(devices: &[Device]) -> Result<Option<String>, PolicyError> {
    let flagged: Vec<&Device> = devices.iter().filter(|d| d.primary).collect();
    match flagged.as_slice() {
        [one] => return Ok(Some(one.instance_id.clone())),
        [] => {}
        many => {
            return Err(PolicyError::MultiplePrimaries(
                many.iter().map(|d| d.instance_id.clone()).collect(),
            ));
        }
    }
    let mut legacy = devices
        .iter()
        .filter(|d| d.capabilities.contains(&Capability::LegacyMessaging));
    Ok(match (legacy.next(), legacy.next()) {
        (Some(one), None) => Some(one.instance_id.clone()),
        _ => None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn device(id: &str, caps: &[Capability]) -> Device {
        Device {
            instance_id: id.into(),
            gruu: Some(format!("sip:+15551230002@ims.example;gr={id}")),
            name: format!("{id} name"),
            primary: false,
            capabilities: caps.iter().copied().collect(),
            registered: true,
            connectivity: Connectivity::Cpm,
        }
    }

    fn reg(version: u64, devices: Vec<Device>) -> Registration {
        Registration {
            user: "sip:+15551230002@ims.example".into(),
            version,
            devices,
        }
    }

    /// PF-REGINFO: a newer document replaces the old one wholesale; an
    /// older or equal version is refused and changes nothing.
    #[test]
    fn pf_reginfo_newer_replaces_wholesale_older_refused() {
        let mut r = Registry::default();
        r.register(reg(1, vec![device("a", &[]), device("b", &[])]))
            .unwrap();
        r.register(reg(2, vec![device("c", &[])])).unwrap();
        let ids: Vec<_> = r
            .get("sip:+15551230002@ims.example")
            .unwrap()
            .devices
            .iter()
            .map(|d| d.instance_id.as_str())
            .collect();
        assert_eq!(ids, ["c"]);
        for stale in [1, 2] {
            let err = r.register(reg(stale, vec![device("z", &[])])).unwrap_err();
            assert!(
                matches!(err, PolicyError::StaleRegistration { stored: 2, got, .. } if got == stale)
            );
        }
        assert_eq!(r.get("sip:+15551230002@ims.example").unwrap().version, 2);
        assert!(matches!(
            r.get("sip:nobody@x"),
            Err(PolicyError::UnknownUser(_))
        ));
    }

    /// CPM-MLD-027: one primary device, identified by flag, else by legacy
    /// messaging capability, else none; two flagged primaries are refused.
    #[test]
    #[allow(clippy::type_complexity)]
    fn cpm_mld_027_primary_identification_table() {
        let flagged = |id: &str| Device {
            primary: true,
            ..device(id, &[])
        };
        let legacy = |id: &str| device(id, &[Capability::LegacyMessaging]);
        let table: Vec<(Vec<Device>, Result<Option<&str>, ()>)> = vec![
            (
                vec![device("tab", &[]), flagged("phone")],
                Ok(Some("phone")),
            ),
            (vec![legacy("phone"), flagged("pc")], Ok(Some("pc"))),
            (vec![device("pc", &[]), legacy("phone")], Ok(Some("phone"))),
            (vec![legacy("p1"), legacy("p2")], Ok(None)),
            (vec![device("pc", &[]), device("tab", &[])], Ok(None)),
            (vec![flagged("p1"), flagged("p2")], Err(())),
        ];
        for (i, (devices, want)) in table.into_iter().enumerate() {
            let mut r = Registry::default();
            let got = r
                .register(reg(1, devices))
                .map(|u| u.primary.clone())
                .map_err(|_| ());
            assert_eq!(got, want.map(|o| o.map(str::to_owned)), "row {i}");
        }
    }

    /// CPM-MLD-015: every device has a name; a nameless one is refused.
    #[test]
    fn cpm_mld_015_device_names_required_and_kept() {
        let mut r = Registry::default();
        let u = r
            .register(reg(
                1,
                vec![Device {
                    name: "Alice's tablet".into(),
                    ..device("t", &[])
                }],
            ))
            .unwrap();
        assert_eq!(u.devices[0].name, "Alice's tablet");
        let nameless = Device {
            name: " ".into(),
            ..device("x", &[])
        };
        assert_eq!(
            r.register(reg(2, vec![nameless])),
            Err(PolicyError::MissingDeviceName("x".into()))
        );
    }

    #[test]
    fn malformed_registrations_and_limits_are_refused() {
        let mut r = Registry::new(RegistryLimits {
            max_users: 1,
            max_devices_per_user: 2,
        });
        assert_eq!(
            r.register(reg(1, vec![device("a", &[]), device("a", &[])])),
            Err(PolicyError::DuplicateInstance("a".into()))
        );
        assert_eq!(
            r.register(reg(1, vec![device("", &[])])),
            Err(PolicyError::EmptyInstance)
        );
        assert!(matches!(
            r.register(reg(
                1,
                vec![device("a", &[]), device("b", &[]), device("c", &[])]
            )),
            Err(PolicyError::Limit(_))
        ));
        r.register(reg(1, vec![])).unwrap();
        let other = Registration {
            user: "sip:other@x".into(),
            version: 1,
            devices: vec![],
        };
        assert!(matches!(r.register(other), Err(PolicyError::Limit(_))));
        assert!(r.remove("sip:+15551230002@ims.example"));
        assert!(r.is_empty());
    }
}
