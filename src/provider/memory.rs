//! Flags held in memory: a [`FlagProvider`] with no flag system behind it, for a backtest that
//! replays a rollout and for a trait-level conformance suite.
//!
//! It keeps the contract the real providers keep. A flag that does not exist is
//! [`ProviderError::NotFound`]. A reading carries a version, and a write whose `seen` version is
//! not the current one is a [`ProviderError::Conflict`] that writes nothing; a change by hand
//! ([`MemoryFlags::set_by_hand`]) moves the version, so it shows as drift exactly as an edit in
//! Unleash or a flagd file would. Values read through [`reading_of`] (enabled for nobody reads as
//! off), and a write is read back: setting a value that does not read back as itself (on at 0%)
//! is written, like a flagd file, and then reported as [`ProviderError::Io`]. The version moves
//! only when the stored value changes, so a write of the value already there leaves it as it was.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{reading_of, ChangeNote, FlagProvider, FlagReading, ProviderError};
use crate::state::FlagValue;

/// One flag as stored: the value as written (before [`reading_of`]) and its version.
#[derive(Debug, Clone)]
struct Stored {
    value: FlagValue,
    version: u64,
    note: Option<ChangeNote>,
}

#[derive(Debug, Default)]
struct Inner {
    flags: BTreeMap<String, Stored>,
    /// Errors the next calls fail with, first first.
    failures: VecDeque<ProviderError>,
    /// The last version given out: versions are never reused, not even by a flag created
    /// again under the same name, so a reading from before never matches a later flag.
    last_version: u64,
}

impl Inner {
    fn next_version(&mut self) -> u64 {
        self.last_version += 1;
        self.last_version
    }
}

/// Flag values in memory, shared by every clone and every [`MemoryFlag`] made from it.
#[derive(Debug, Clone, Default)]
pub struct MemoryFlags {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryFlags {
    /// No flags yet.
    pub fn new() -> MemoryFlags {
        MemoryFlags::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the map whole: every change is one insert.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates flag `key` with `value` (replacing any flag of that name, at a new version).
    pub fn create(&self, key: &str, value: FlagValue) {
        let mut inner = self.lock();
        let version = inner.next_version();
        inner.flags.insert(
            key.to_string(),
            Stored {
                value,
                version,
                note: None,
            },
        );
    }

    /// Deletes flag `key`; later reads and writes of it are [`ProviderError::NotFound`].
    pub fn remove(&self, key: &str) {
        self.lock().flags.remove(key);
    }

    /// A person changes flag `key` outside flagramp: the version moves if the value does.
    /// Returns false when there is no such flag.
    pub fn set_by_hand(&self, key: &str, value: FlagValue) -> bool {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(stored) = inner.flags.get_mut(key) else {
            return false;
        };
        if stored.value != value {
            stored.value = value;
            inner.last_version += 1;
            stored.version = inner.last_version;
            stored.note = None;
        }
        true
    }

    /// What flag `key` reads as now, without going through a provider.
    pub fn value(&self, key: &str) -> Option<FlagValue> {
        self.lock()
            .flags
            .get(key)
            .map(|s| reading_of(s.value.enabled, s.value.percent))
    }

    /// The note of the last write flagramp made to flag `key`, if the value since is its.
    pub fn last_note(&self, key: &str) -> Option<ChangeNote> {
        self.lock().flags.get(key).and_then(|s| s.note.clone())
    }

    /// The next provider call (a read or a write, of any flag) fails with `error`, before it
    /// reads or writes anything. Several queue up in order.
    pub fn fail_next(&self, error: ProviderError) {
        self.lock().failures.push_back(error);
    }

    /// The provider of flag `key` in these flags.
    pub fn flag(&self, key: &str) -> MemoryFlag {
        MemoryFlag {
            flags: self.clone(),
            key: key.to_string(),
        }
    }
}

/// One flag in [`MemoryFlags`], as a [`FlagProvider`].
#[derive(Debug, Clone)]
pub struct MemoryFlag {
    flags: MemoryFlags,
    key: String,
}

impl MemoryFlag {
    fn not_found(&self) -> ProviderError {
        ProviderError::NotFound(format!("flag `{}` is not in memory", self.key))
    }

    fn reading(stored: &Stored) -> FlagReading {
        FlagReading {
            value: reading_of(stored.value.enabled, stored.value.percent),
            version: stored.version.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl FlagProvider for MemoryFlag {
    fn describe(&self) -> String {
        format!("memory flag `{}`", self.key)
    }

    async fn read(&self) -> Result<FlagReading, ProviderError> {
        let mut inner = self.flags.lock();
        if let Some(error) = inner.failures.pop_front() {
            return Err(error);
        }
        inner
            .flags
            .get(&self.key)
            .map(Self::reading)
            .ok_or_else(|| self.not_found())
    }

    async fn set(&self, to: FlagValue, seen: &FlagReading, note: &ChangeNote) -> Result<FlagReading, ProviderError> {
        let mut guard = self.flags.lock();
        let inner = &mut *guard;
        if let Some(error) = inner.failures.pop_front() {
            return Err(error);
        }
        let not_found = self.not_found();
        let stored = inner.flags.get_mut(&self.key).ok_or(not_found)?;
        if stored.version.to_string() != seen.version {
            return Err(ProviderError::Conflict(format!(
                "memory flag `{}` changed since it was read (version {} is now {}); nothing was written",
                self.key, seen.version, stored.version
            )));
        }
        if stored.value != to {
            stored.value = to;
            inner.last_version += 1;
            stored.version = inner.last_version;
        }
        stored.note = Some(note.clone());
        let back = Self::reading(stored);
        if back.value != to {
            return Err(ProviderError::Io(format!(
                "memory flag `{}` reads back {} after setting {}",
                self.key,
                back.value.describe(),
                to.describe()
            )));
        }
        Ok(back)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::percent::pct;
    use crate::percent::Percent;

    #[tokio::test]
    async fn a_missing_flag_is_not_found() {
        let flags = MemoryFlags::new();
        let f = flags.flag("k");
        assert!(matches!(f.read().await, Err(ProviderError::NotFound(_))));
        let seen = FlagReading {
            value: FlagValue::OFF,
            version: "1".into(),
        };
        assert!(matches!(
            f.set(FlagValue::on(pct(5)), &seen, &ChangeNote::default()).await,
            Err(ProviderError::NotFound(_))
        ));
        assert_eq!(flags.value("k"), None);
        assert!(!flags.set_by_hand("k", FlagValue::OFF));
    }

    #[tokio::test]
    async fn writes_compare_and_swap_and_read_back() {
        let flags = MemoryFlags::new();
        flags.create("k", FlagValue::OFF);
        let f = flags.flag("k");
        let first = f.read().await.unwrap();
        assert_eq!(first.value, FlagValue::OFF);
        let note = ChangeNote {
            actor: "flagramp".into(),
            reason: "stage 1".into(),
        };
        let second = f.set(FlagValue::on(pct(10)), &first, &note).await.unwrap();
        assert_eq!(second.value, FlagValue::on(pct(10)));
        assert_ne!(second.version, first.version);
        assert_eq!(f.read().await.unwrap(), second);
        assert_eq!(flags.value("k"), Some(FlagValue::on(pct(10))));
        assert_eq!(flags.last_note("k"), Some(note));
        // A stale reading writes nothing.
        let stale = f.set(FlagValue::on(pct(50)), &first, &ChangeNote::default()).await;
        assert!(matches!(stale, Err(ProviderError::Conflict(_))), "{stale:?}");
        assert_eq!(f.read().await.unwrap(), second);
        // Setting the value already there keeps the version.
        assert_eq!(
            f.set(FlagValue::on(pct(10)), &second, &ChangeNote::default())
                .await
                .unwrap(),
            second
        );
    }

    #[tokio::test]
    async fn a_change_by_hand_is_drift() {
        let flags = MemoryFlags::new();
        flags.create("k", FlagValue::on(pct(10)));
        let f = flags.flag("k");
        let seen = f.read().await.unwrap();
        assert!(flags.set_by_hand("k", FlagValue::on(pct(10))));
        assert_eq!(f.read().await.unwrap(), seen, "the same value by hand is no change");
        assert!(flags.set_by_hand("k", FlagValue::on(pct(30))));
        let now = f.read().await.unwrap();
        assert_eq!(now.value, FlagValue::on(pct(30)));
        assert_ne!(now.version, seen.version);
        assert!(matches!(
            f.set(FlagValue::on(pct(25)), &seen, &ChangeNote::default()).await,
            Err(ProviderError::Conflict(_))
        ));
        assert_eq!(flags.value("k"), Some(FlagValue::on(pct(30))));
        assert_eq!(flags.last_note("k"), None);
    }

    #[tokio::test]
    async fn enabled_for_nobody_reads_as_off() {
        let flags = MemoryFlags::new();
        flags.create("k", FlagValue::on(Percent::ZERO));
        let f = flags.flag("k");
        let seen = f.read().await.unwrap();
        assert_eq!(seen.value, FlagValue::OFF);
        let on = f
            .set(FlagValue::on(pct(5)), &seen, &ChangeNote::default())
            .await
            .unwrap();
        // Written, like a flagd file, but it does not read back as what was asked.
        let zero = f.set(FlagValue::on(Percent::ZERO), &on, &ChangeNote::default()).await;
        assert!(matches!(zero, Err(ProviderError::Io(_))), "{zero:?}");
        assert_eq!(f.read().await.unwrap().value, FlagValue::OFF);
    }

    #[tokio::test]
    async fn failures_come_first_and_in_order_and_handles_share_the_flags() {
        let flags = MemoryFlags::new();
        flags.create("a", FlagValue::OFF);
        let a = flags.flag("a");
        let also_a = flags.clone().flag("a");
        flags.fail_next(ProviderError::Io("down".into()));
        flags.fail_next(ProviderError::Auth("refused".into()));
        assert_eq!(a.read().await, Err(ProviderError::Io("down".into())));
        let seen = FlagReading {
            value: FlagValue::OFF,
            version: "1".into(),
        };
        assert_eq!(
            a.set(FlagValue::on(pct(5)), &seen, &ChangeNote::default()).await,
            Err(ProviderError::Auth("refused".into()))
        );
        assert_eq!(flags.value("a"), Some(FlagValue::OFF), "a failed write writes nothing");
        let seen = a.read().await.unwrap();
        also_a
            .set(FlagValue::on(pct(5)), &seen, &ChangeNote::default())
            .await
            .unwrap();
        assert_eq!(a.read().await.unwrap().value, FlagValue::on(pct(5)));
        let before = a.read().await.unwrap();
        flags.remove("a");
        assert!(matches!(a.read().await, Err(ProviderError::NotFound(_))));
        flags.create("a", FlagValue::on(pct(5)));
        assert!(
            matches!(
                a.set(FlagValue::OFF, &before, &ChangeNote::default()).await,
                Err(ProviderError::Conflict(_))
            ),
            "a flag created again is not the flag that was read"
        );
        assert_eq!(a.describe(), "memory flag `a`");
    }
}
