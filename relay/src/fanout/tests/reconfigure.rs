//! OPS-RELOAD: a configuration reload reaches the engine: pacing and the
//! process memory budget at once, the engine's identity kept, a bad
//! pacing refused with nothing changed.

use std::time::Instant;

use crate::fanout::pacer::PacerConfig;
use crate::fanout::{Engine, EngineConfig, MemoryBudget};

#[test]
fn ops_reload_engine_takes_pacing_and_budget_keeps_identity() {
    let cfg = EngineConfig {
        worker: 3,
        workers: 4,
        host: "192.0.2.1".into(),
        ..EngineConfig::default()
    };
    let budget = MemoryBudget::new(1 << 20);
    let mut eng = Engine::new(cfg, budget.clone(), Instant::now()).unwrap();
    let mut new = EngineConfig {
        host: "198.51.100.9".into(),
        done_pacing: PacerConfig {
            max_per_sec: 7,
            burst: 2,
        },
        leg_timeout: std::time::Duration::from_secs(5),
        ..EngineConfig::default()
    };
    eng.reconfigure(&new, 8 << 20).unwrap();
    assert_eq!(budget.limit(), 8 << 20);
    let c = eng.config();
    assert_eq!((c.worker, c.workers, c.host.as_str()), (3, 4, "192.0.2.1"));
    assert_eq!(c.done_pacing.max_per_sec, 7);
    assert_eq!(c.leg_timeout, std::time::Duration::from_secs(5));

    new.done_pacing.max_per_sec = 0;
    new.leg_timeout = std::time::Duration::from_secs(9);
    assert!(eng.reconfigure(&new, 1).is_err());
    assert_eq!(budget.limit(), 8 << 20);
    assert_eq!(eng.config().leg_timeout, std::time::Duration::from_secs(5));
}
