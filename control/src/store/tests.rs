//! Store tests on a local-disk backend in a temporary directory.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::*;

const MIB: usize = 1 << 20;

fn open(dir: &TempDir) -> Store {
    let cfg = StoreConfig {
        path: Some(dir.path().join("store")),
        part_size: 5 * MIB,
        retention: Duration::from_secs(3600),
        ..StoreConfig::default()
    };
    Store::open(&cfg).expect("open local store")
}

fn meta(item: &str, created_ms: u64) -> ItemMeta {
    ItemMeta {
        item: item.into(),
        call_id: "c1@example.net".into(),
        from_tag: "ft1".into(),
        kind: meta::KIND_FILE_TRANSFER.into(),
        sender_sdp: "v=0\r\n".into(),
        created_ms,
        messages: vec![StoredMessage {
            index: 0,
            message_id: "m1".into(),
            content_type: Some("image/png".into()),
            bytes: 3,
            sha256: "ab".into(),
            total: Some(3),
            interrupted: false,
        }],
        complete: true,
        pending: vec![PendingDevice {
            via_branch: "z9hG4bK1".into(),
            instance_id: None,
        }],
        state: ItemState::Stored,
    }
}

/// Deterministic, non-repeating-looking bytes.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// Every regular file under `dir`, relative names.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .expect("under dir")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out
}

#[test]
fn ft_resume_read_range_20mib_body_in_odd_writes() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    // Short writes are copied into the part, long ones shared: both here.
    let data = Bytes::from(pattern(20 * MIB + 12_345));
    let mut w = store.body_writer("abc123", 0).expect("writer");
    let sizes = [1usize, 7, 4093, 65_537, 1_000_003, 3 * MIB + 11];
    let (mut at, mut i) = (0, 0);
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        w.write(data.slice(at..at + n)).expect("write");
        at += n;
        i += 1;
        assert_eq!(w.written(), at as u64);
    }
    assert!(
        store.read_range("abc123", 0, 0..10).is_err(),
        "visible before finish"
    );
    let info = w.finish().expect("finish");
    assert_eq!(info.bytes, data.len() as u64);
    assert_eq!(info.sha256, hex::encode(Sha256::digest(&data)));
    let mut back = Vec::with_capacity(data.len());
    let mut start = 0u64;
    let step = MAX_READ_RANGE - 4097;
    while start < data.len() as u64 {
        let end = (start + step).min(data.len() as u64);
        back.extend_from_slice(&store.read_range("abc123", 0, start..end).expect("range"));
        start = end;
    }
    assert_eq!(hex::encode(Sha256::digest(&back)), info.sha256);
    assert!(back == data);
}

#[test]
fn ft_resume_read_range_bounds() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let mut w = store.body_writer("r1", 3).expect("writer");
    w.write(Bytes::from_static(b"hello world")).expect("write");
    assert_eq!(w.finish().expect("finish").bytes, 11);
    assert_eq!(
        &store.read_range("r1", 3, 6..11).expect("tail")[..],
        b"world"
    );
    assert_eq!(
        &store.read_range("r1", 3, 6..100).expect("clamped")[..],
        b"world"
    );
    assert!(store.read_range("r1", 3, 5..5).expect("empty").is_empty());
    assert!(
        store.read_range("r1", 3, 11..20).is_err(),
        "start at the end"
    );
    let too_big = 0..MAX_READ_RANGE + 1;
    assert!(matches!(
        store.read_range("r1", 3, too_big),
        Err(StoreError::Config(_))
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = 5..2;
    assert!(matches!(
        store.read_range("r1", 3, inverted),
        Err(StoreError::Config(_))
    ));
    let missing = store.read_range("r1", 4, 0..1).expect_err("no body 4");
    assert!(missing.is_not_found(), "{missing}");
}

#[test]
fn ft_resume_read_range_empty_body() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let info = store
        .body_writer("e1", 0)
        .expect("writer")
        .finish()
        .expect("finish");
    assert_eq!(
        info,
        BodyInfo {
            bytes: 0,
            sha256: hex::encode(Sha256::digest(b""))
        }
    );
}

#[test]
fn pf_defer_aborted_or_dropped_writer_leaves_no_body() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let data = Bytes::from(pattern(6 * MIB));
    let mut w = store.body_writer("ab1", 0).expect("writer");
    w.write(data.clone()).expect("write");
    w.abort();
    let mut w = store.body_writer("ab1", 1).expect("writer");
    w.write(data).expect("write");
    drop(w);
    for index in [0, 1] {
        let e = store.read_range("ab1", index, 0..1).expect_err("no body");
        assert!(e.is_not_found(), "{e}");
    }
    assert!(store.list().expect("list").is_empty());
    assert_eq!(files(&dir.path().join("store")), Vec::<String>::new());
}

#[test]
fn pf_defer_crash_mid_body_leaves_no_body() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    store.put_meta(&meta("cr1", 1)).expect("meta");
    let mut w = store.body_writer("cr1", 0).expect("writer");
    w.write(Bytes::from(pattern(6 * MIB))).expect("write");
    // A crash: neither finish, abort nor drop runs.
    std::mem::forget(w);
    assert!(
        store
            .read_range("cr1", 0, 0..1)
            .expect_err("no body")
            .is_not_found()
    );
    let left = files(&dir.path().join("store"));
    assert!(
        left.iter().any(|f| f.contains("body-0#")),
        "staging file: {left:?}"
    );
    store.delete("cr1").expect("delete");
    assert_eq!(files(&dir.path().join("store")), Vec::<String>::new());
}

#[test]
fn pf_defer_meta_round_trip() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    assert_eq!(store.backend_name(), "local");
    assert_eq!(store.get_meta("m1").expect("get"), None);
    let mut m = meta("m1", 42);
    store.put_meta(&m).expect("put");
    assert_eq!(store.get_meta("m1").expect("get"), Some(m.clone()));
    m.state = ItemState::Failed("sender hung up".into());
    m.pending.clear();
    store.put_meta(&m).expect("overwrite");
    assert_eq!(store.get_meta("m1").expect("get"), Some(m.clone()));
    assert_eq!(store.list().expect("list"), vec![m]);
}

#[test]
fn pf_defer_list_skips_garbage_meta() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    store.put_meta(&meta("good1", 1)).expect("put");
    store.put_meta(&meta("good2", 2)).expect("put");
    let bad = dir.path().join("store/items/bad1");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(bad.join("meta.json"), b"{not json").expect("write");
    // A meta that names another item is corrupt too.
    let other = dir.path().join("store/items/bad2");
    std::fs::create_dir_all(&other).expect("mkdir");
    let json = serde_json::to_vec(&meta("good1", 1)).expect("json");
    std::fs::write(other.join("meta.json"), json).expect("write");
    let listed = ids(&store);
    assert_eq!(listed, ["good1", "good2"]);
    assert!(matches!(
        store.get_meta("bad1"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn pf_defer_delete_removes_everything() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    store.put_meta(&meta("d1", 1)).expect("put");
    store.put_meta(&meta("keep", 1)).expect("put");
    for index in 0..3 {
        let mut w = store.body_writer("d1", index).expect("writer");
        w.write(Bytes::from_static(b"body")).expect("write");
        w.finish().expect("finish");
    }
    assert!(store.mark_delivered("d1", "urn:gsma:imei:1").expect("mark"));
    store.delete("d1").expect("delete");
    assert_eq!(store.get_meta("d1").expect("get"), None);
    assert!(store.read_range("d1", 0, 0..1).is_err());
    assert_eq!(store.delivered("d1").expect("count"), 0);
    assert!(!dir.path().join("store/items/d1").exists());
    store.delete("d1").expect("deleting a missing item");
    let left = ids(&store);
    assert_eq!(left, ["keep"]);
}

#[test]
fn pf_defer_bad_item_id_rejected() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir);
    let long = "a".repeat(129);
    for bad in [
        "",
        "..",
        "../x",
        "a/b",
        "a.b",
        "a b",
        "é",
        "a%2F",
        long.as_str(),
    ] {
        let is_config = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Config(_)));
        assert!(is_config(store.body_writer(bad, 0).map(drop)), "{bad:?}");
        assert!(
            is_config(store.read_range(bad, 0, 0..1).map(drop)),
            "{bad:?}"
        );
        assert!(is_config(store.put_meta(&meta(bad, 1))), "{bad:?}");
        assert!(is_config(store.get_meta(bad).map(drop)), "{bad:?}");
        assert!(is_config(store.delete(bad)), "{bad:?}");
        assert!(
            is_config(store.mark_delivered(bad, "dev").map(drop)),
            "{bad:?}"
        );
        assert!(is_config(store.delivered(bad).map(drop)), "{bad:?}");
        assert!(is_config(store.unmark_delivered(bad, "dev")), "{bad:?}");
    }
    assert!(!dir.path().join("x").exists());
}

#[test]
fn pf_defer_mark_delivered_once_across_relays() {
    let dir = TempDir::new().expect("tempdir");
    let a = open(&dir);
    let b = open(&dir);
    a.put_meta(&meta("md1", 1)).expect("put");
    assert_eq!(a.delivered("md1").expect("count"), 0);
    assert!(a.mark_delivered("md1", "urn:gsma:imei:35").expect("first"));
    assert!(!a.mark_delivered("md1", "urn:gsma:imei:35").expect("again"));
    assert!(
        !b.mark_delivered("md1", "urn:gsma:imei:35")
            .expect("other relay")
    );
    assert!(b.mark_delivered("md1", "z9hG4bK-2").expect("second device"));
    assert_eq!(a.delivered("md1").expect("count"), 2);
    // A failed delivery gives the marker back.
    a.unmark_delivered("md1", "urn:gsma:imei:35")
        .expect("unmark");
    a.unmark_delivered("md1", "urn:gsma:imei:35")
        .expect("unmark a missing marker");
    assert_eq!(b.delivered("md1").expect("count"), 1);
    assert!(
        b.mark_delivered("md1", "urn:gsma:imei:35")
            .expect("marked again")
    );
    assert!(matches!(
        a.mark_delivered("md1", ""),
        Err(StoreError::Config(_))
    ));
}

#[test]
fn pf_defer_expire_deletes_only_old_items() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir); // retention: one hour
    let now = 10_000_000_000u64;
    store.put_meta(&meta("old1", now - 3_600_001)).expect("put");
    store.put_meta(&meta("edge", now - 3_600_000)).expect("put");
    store.put_meta(&meta("new1", now - 1)).expect("put");
    let mut w = store.body_writer("old1", 0).expect("writer");
    w.write(Bytes::from_static(b"x")).expect("write");
    w.finish().expect("finish");
    assert_eq!(store.expire(now).expect("expire"), ["old1"]);
    let left = ids(&store);
    assert_eq!(left, ["edge", "new1"]);
    assert!(store.read_range("old1", 0, 0..1).is_err());
    assert!(store.expire(now).expect("again").is_empty());
}

#[test]
fn pf_defer_open_checks_config() {
    let dir = TempDir::new().expect("tempdir");
    let both = StoreConfig {
        path: Some(dir.path().into()),
        s3: Some(S3Config {
            bucket: "b".into(),
            ..S3Config::default()
        }),
        ..StoreConfig::default()
    };
    assert!(matches!(Store::open(&both), Err(StoreError::Config(_))));
    assert!(matches!(
        Store::open(&StoreConfig::default()),
        Err(StoreError::Config(_))
    ));
    let small = StoreConfig {
        s3: Some(S3Config {
            bucket: "b".into(),
            ..S3Config::default()
        }),
        part_size: MIB,
        ..StoreConfig::default()
    };
    assert!(matches!(Store::open(&small), Err(StoreError::Config(_))));
}

#[test]
fn pf_defer_open_s3_unreachable_names_bucket() {
    // A port nothing listens on; static credentials, so no metadata lookup.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cfg = StoreConfig {
        s3: Some(S3Config {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            bucket: "deferred".into(),
            region: "us-east-1".into(),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
            allow_http: true,
        }),
        ..StoreConfig::default()
    };
    let e = Store::open(&cfg).expect_err("nothing listens");
    assert!(e.to_string().contains("s3://deferred"), "{e}");
}

/// The ids `list` returns, in its order.
fn ids(store: &Store) -> Vec<String> {
    store
        .list()
        .expect("list")
        .into_iter()
        .map(|m| m.item)
        .collect()
}
