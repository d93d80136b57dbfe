/**
 * Every Prometheus metric sipwarden exports, in one table: the registry is built from it, the
 * README table is written from it, and the tests check that each one is exposed. A metric that
 * is not listed here does not exist.
 */

/** One documented Prometheus metric. */
export interface MetricDoc {
  readonly name: string;
  readonly type: "counter" | "gauge" | "histogram";
  readonly labels: readonly string[];
  /** The `# HELP` text: what the value means, precisely enough to alert on. */
  readonly help: string;
}

function doc(name: string, type: MetricDoc["type"], labels: readonly string[], help: string): MetricDoc {
  return { name, type, labels, help };
}

export const METRICS = {
  info: doc(
    "sipwarden_info",
    "gauge",
    ["version", "backend"],
    "Always 1; the labels give the version and the firewall backend (dry-run blocks nothing).",
  ),
  records: doc(
    "sipwarden_records_total",
    "counter",
    ["source"],
    "Records read from each source (log lines, AMI events), whether or not they held an event; rate() is the parse rate.",
  ),
  events: doc(
    "sipwarden_events_total",
    "counter",
    ["server", "service", "kind"],
    "Security events parsed from the records, by SIP server, service (PJSIP, SIP, AMI, IAX2, sofia, ...) and event kind.",
  ),
  skipped: doc(
    "sipwarden_lines_skipped_total",
    "counter",
    ["source", "reason"],
    "Records not used for detection: parser_error (a parser threw), hostile (could carry a planted address), detector_error (the detector threw).",
  ),
  lag: doc(
    "sipwarden_source_lag_seconds",
    "gauge",
    ["source"],
    "Read time minus the record's own timestamp, for the newest event of each source (log timestamps often have 1 s resolution).",
  ),
  up: doc(
    "sipwarden_source_up",
    "gauge",
    ["source"],
    "1 while the source runs, 0 while it backs off after a failure or is stopped.",
  ),
  restarts: doc(
    "sipwarden_source_restarts_total",
    "counter",
    ["source"],
    "Restarts of each source by the supervisor after a failure.",
  ),
  activeBans: doc(
    "sipwarden_active_bans",
    "gauge",
    ["rule"],
    "Bans in force in the firewall, by the rule that made them (manual for bans from the CLI or API).",
  ),
  bans: doc(
    "sipwarden_bans_total",
    "counter",
    ["rule"],
    "Bans applied to the firewall, by rule (manual included); a rule extending a current ban counts again.",
  ),
  unbans: doc(
    "sipwarden_unbans_total",
    "counter",
    ["rule", "reason"],
    "Bans lifted, by the rule that made them and why: expiry, or manual (CLI, API).",
  ),
  simulated: doc(
    "sipwarden_bans_simulated_total",
    "counter",
    ["rule"],
    "Decisions of rules in simulate mode: reported, not enforced.",
  ),
  suppressed: doc(
    "sipwarden_bans_suppressed_total",
    "counter",
    ["rule", "reason"],
    "Decisions the policy refused: allowlist, trusted (trust after a successful login), self (the host's own address).",
  ),
  banFailures: doc(
    "sipwarden_ban_failures_total",
    "counter",
    ["reason"],
    "Rule bans that did not reach the firewall: refused (a protected address), error (every retry failed).",
  ),
  timeToBan: doc(
    "sipwarden_time_to_ban_seconds",
    "histogram",
    [],
    "From reading the record that completed a rule to the ban being in the firewall.",
  ),
  enforcerCommands: doc(
    "sipwarden_enforcer_commands_total",
    "counter",
    ["backend"],
    "Firewall transactions or processes run (nft, ipset, iptables), conntrack excluded.",
  ),
  enforcerErrors: doc(
    "sipwarden_enforcer_errors_total",
    "counter",
    ["backend", "type"],
    "Firewall errors: command (a command failed), conntrack (a conntrack flush failed), gave_up (an operation dropped after its last retry).",
  ),
  enforcerRetries: doc(
    "sipwarden_enforcer_retries_total",
    "counter",
    ["backend"],
    "Firewall operations scheduled again after a failure.",
  ),
  notifySent: doc(
    "sipwarden_notify_sent_total",
    "counter",
    ["sink"],
    "Notifications (mails, webhook POSTs) the receiver accepted.",
  ),
  notifyFailures: doc(
    "sipwarden_notify_failures_total",
    "counter",
    ["sink", "type"],
    "Notification failures: failed (a delivery given up after its attempts), dropped (notices never delivered: queue overflow or part of a failed delivery).",
  ),
  notifyPending: doc("sipwarden_notify_pending", "gauge", ["sink"], "Notices waiting for delivery."),
  trackedKeys: doc(
    "sipwarden_detector_tracked_keys",
    "gauge",
    [],
    "Keys (addresses, networks) the detection rules currently track.",
  ),
  statsdErrors: doc(
    "sipwarden_statsd_errors_total",
    "counter",
    [],
    "StatsD packets that could not be sent (resolution or socket errors).",
  ),
} as const satisfies Record<string, MetricDoc>;

/** `time_to_ban` buckets, in seconds: a ban normally lands within tens of milliseconds. */
export const TIME_TO_BAN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The StatsD metrics, for the README (prefix `security` by default). */
export const STATSD_METRICS: readonly { name: string; meaning: string }[] = [
  {
    name: "<prefix>.failed_auth.<Service>.<ADDR>",
    meaning:
      "Failed authentications (kinds auth_failed and unknown_account) from one address, e.g. `security.failed_auth.PJSIP.IPV4/UDP/198_51_100_23`",
  },
  { name: "<prefix>.failed_auth.<Service>.count", meaning: "Failed authentications for the service, all addresses" },
  { name: "<prefix>.events.<kind>", meaning: "Security events by kind (auth_failed, scanner, hostile, ...)" },
  { name: "<prefix>.bans.<rule>", meaning: "Bans applied to the firewall, by rule (manual included)" },
  { name: "<prefix>.unbans.<rule>", meaning: "Bans lifted (expiry or manual), by the rule that made them" },
];
