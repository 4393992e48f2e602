use crate::Clock;
use std::time::Duration;

/// The default `-event_retention`: upstream KAR's Kafka retention (15 min).
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(15 * 60);

/// What a runtime needs to know about itself.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub app: String,
    /// The `-service` name (`kar.none` by default).
    pub service: String,
    /// The `-actors` types.
    pub actors: Vec<String>,
    /// The port the component reaches the runtime on (advertised in membership).
    pub runtime_port: u16,
    /// Start deadline of requests (`-missing_component_timeout`); `None` = no deadline.
    pub missing_component_timeout: Option<Duration>,
    /// Longest wait in an actor's queue (`-actor_busy_timeout`); `None` = forever.
    pub actor_busy_timeout: Option<Duration>,
    /// Idle actor collection period (`-actor_collector_interval`); `None` = off.
    pub actor_collector_interval: Option<Duration>,
    /// How soon the reminder loop tries again after the store failed
    /// (`-actor_reminder_interval`). Otherwise the loop sleeps until the next target
    /// time or a wake-up, not by this tick (see `reminders.rs`).
    pub actor_reminder_interval: Duration,
    /// A reminder firing later than this after its target logs a warning
    /// (`-actor_reminder_acceptable_delay`); `None` = never.
    pub actor_reminder_acceptable_delay: Option<Duration>,
    /// `-cancel`: recovered calls whose caller is gone are not executed again.
    pub cancel: bool,
    /// How long an idempotency key maps to its request (`-idempotency_retention`),
    /// from its enqueue and again from its completion.
    pub idempotency_retention: Duration,
    /// The wall clock of deadlines and reminder times: the system's, or a test clock
    /// driven by tokio time.
    pub clock: Clock,
    /// How long events are kept once every subscription passed them
    /// (`-event_retention`, `retention.rs`).
    pub event_retention: Duration,
    /// `-kafka_brokers` and `-kafka_topics` (`kafka/`); `None` without brokers.
    pub kafka: Option<crate::KafkaConfig>,
    /// Most actors this member moves to other members per second when it hosts more
    /// than its fair share of a type (`-actor_rebalance_rate`, `rebalance.rs`); 0 = never.
    pub actor_rebalance_rate: u32,
    /// How long a graceful leave lets the requests running here finish
    /// (`-shutdown_grace`); those still running then are left to recovery.
    pub shutdown_grace: Duration,
    /// Most tells (requests nobody waits for) executing here at once
    /// (`-max_concurrent_tells`, `executor.rs`); 0 = no cap.
    pub max_concurrent_tells: usize,
    /// Most reminder firings of the application pending (enqueued, not finished)
    /// before this member holds back further firings (`-max_pending_firings`,
    /// `reminders.rs`); 0 = no bound.
    pub max_pending_firings: usize,
}

/// The default `-actor_rebalance_rate` (moves per second).
pub const DEFAULT_ACTOR_REBALANCE_RATE: u32 = 100;
/// The default `-max_concurrent_tells`.
pub const DEFAULT_MAX_CONCURRENT_TELLS: usize = 256;
/// The default `-max_pending_firings`: a few times what one member executes at once,
/// so that the executors never run dry between two firing passes.
pub const DEFAULT_MAX_PENDING_FIRINGS: usize = 4 * DEFAULT_MAX_CONCURRENT_TELLS;
/// The default `-shutdown_grace`: Kubernetes' default termination grace period.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

impl RuntimeConfig {
    pub fn new(app: impl Into<String>) -> Self {
        RuntimeConfig {
            app: app.into(),
            service: "kar.none".to_string(),
            actors: Vec::new(),
            runtime_port: 0,
            missing_component_timeout: Some(Duration::from_secs(120)),
            actor_busy_timeout: Some(Duration::from_secs(120)),
            actor_collector_interval: Some(Duration::from_secs(10)),
            actor_reminder_interval: Duration::from_millis(100),
            actor_reminder_acceptable_delay: Some(Duration::from_secs(3)),
            cancel: false,
            idempotency_retention: Duration::from_secs(24 * 3600),
            clock: Clock::system(),
            event_retention: DEFAULT_EVENT_RETENTION,
            kafka: None,
            actor_rebalance_rate: DEFAULT_ACTOR_REBALANCE_RATE,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_concurrent_tells: DEFAULT_MAX_CONCURRENT_TELLS,
            max_pending_firings: DEFAULT_MAX_PENDING_FIRINGS,
        }
    }
}
