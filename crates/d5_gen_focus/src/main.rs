//! `gen_focus` — deterministic synthetic FinOps FOCUS 1.2 CSV for the
//! d5_storage benchmarks. No dependencies; see `USAGE`.
//!
//! Model: every (tenant, cloud account) belongs to one provider (AWS, Azure or
//! Google Cloud, round robin) and owns `ceil(rows_per_account / hours)`
//! resources; each resource emits one row per hour (hour-major order) until
//! the account's row budget is used. Everything derives from `--seed` and the
//! (tenant, account) indices, so one account's rows are identical whatever
//! else is generated.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "\
gen_focus: write synthetic FinOps FOCUS 1.2 CSV (PascalCase header, RFC 4180).

Sizes (defaults in brackets):
  --tenants N              tenants [1]
  --accounts-per-tenant N  cloud accounts per tenant [1]
  --rows N                 total data rows over all accounts, split evenly [10000]
  --rows-per-account N     rows per (tenant, account) instead of --rows
  --start DATE             first ChargePeriodStart hour, YYYY-MM-DD or
                           YYYY-MM-DDTHH [2024-09-01]
  --hours N                hourly charge periods per account [168]
  --seed N                 PRNG seed [1]

Output:
  (default)                one CSV stream on stdout (one header), accounts in
                           (tenant, account) order
  --manifest PATH          with stdout output: write a TSV manifest of which
                           lines belong to which tenant/account
  --out-dir DIR            one CSV file per (tenant, account) plus
                           DIR/manifest.tsv
  --batch-rows N           with --out-dir: split each account into files of at
                           most N rows (note: d5.ingest_focus replaces earlier
                           rows of the same cloud account + billing account +
                           billing period, so batches of one account that share
                           a billing month replace each other)
  --columns full|minimal   full = all FOCUS 1.2 columns + 4 x_ columns (61);
                           minimal = 13 mandatory + 8 common (21) [full]
  --reject-every N         make every Nth row of each account invalid (cycling
                           through bad number, bad currency, end<start,
                           unknown ChargeCategory, non-object Tags) [0 = none]

Manifest columns (TSV with header): file tenant_index tenant_id account_index
cloud_account_id provider billing_account_id rows first_line last_line
bad_rows. Lines are 1-based physical lines of the file (header = 1); no
generated field contains a newline, so row k of a file is on line k + 1.

Progress and throughput go to stderr.

Examples:
  gen_focus --rows 50000 > one_batch.csv
  gen_focus --tenants 4 --accounts-per-tenant 5 --rows-per-account 50000 --out-dir bench/out/ingest
  gen_focus --tenants 1000 --rows 10000000 --hours 168 --out-dir bench/out/query
";

// ----------------------------------------------------------------- options

struct Opts {
    tenants: u64,
    accounts: u64,
    rows: Option<u64>,
    rows_per_account: Option<u64>,
    start_hour: i64,
    hours: u64,
    seed: u64,
    out_dir: Option<PathBuf>,
    batch_rows: Option<u64>,
    manifest: Option<PathBuf>,
    minimal: bool,
    reject_every: u64,
}

fn parse_u64(flag: &str, v: Option<String>) -> Result<u64, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.replace('_', "")
        .parse::<u64>()
        .map_err(|_| format!("{flag}: {v:?} is not a non-negative integer"))
}

fn parse_start(v: &str) -> Result<i64, String> {
    let bad = || format!("--start: {v:?} is not YYYY-MM-DD or YYYY-MM-DDTHH");
    let b = v.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let y = num(&v[0..4])?;
    let m = num(&v[5..7])?;
    let d = num(&v[8..10])?;
    let mut h = 0;
    if b.len() > 10 {
        if !(b[10] == b'T' || b[10] == b' ') || b.len() < 13 {
            return Err(bad());
        }
        h = num(&v[11..13])?;
    }
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(i64::from(y), m) || h > 23 || y < 1970
    {
        return Err(bad());
    }
    Ok(days_from_civil(i64::from(y), m, d) * 24 + i64::from(h))
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        tenants: 1,
        accounts: 1,
        rows: None,
        rows_per_account: None,
        start_hour: days_from_civil(2024, 9, 1) * 24,
        hours: 168,
        seed: 1,
        out_dir: None,
        batch_rows: None,
        manifest: None,
        minimal: false,
        reject_every: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut val = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--tenants" => o.tenants = parse_u64(&flag, val())?,
            "--accounts-per-tenant" => o.accounts = parse_u64(&flag, val())?,
            "--rows" => o.rows = Some(parse_u64(&flag, val())?),
            "--rows-per-account" => o.rows_per_account = Some(parse_u64(&flag, val())?),
            "--start" => o.start_hour = parse_start(&val().ok_or("--start needs a value")?)?,
            "--hours" => o.hours = parse_u64(&flag, val())?,
            "--seed" => o.seed = parse_u64(&flag, val())?,
            "--out-dir" => o.out_dir = Some(PathBuf::from(val().ok_or("--out-dir needs a value")?)),
            "--batch-rows" => o.batch_rows = Some(parse_u64(&flag, val())?),
            "--manifest" => {
                o.manifest = Some(PathBuf::from(val().ok_or("--manifest needs a value")?))
            }
            "--columns" => {
                o.minimal = match val().as_deref() {
                    Some("full") => false,
                    Some("minimal") => true,
                    other => {
                        return Err(format!(
                            "--columns: expected full or minimal, got {other:?}"
                        ))
                    }
                }
            }
            "--reject-every" => o.reject_every = parse_u64(&flag, val())?,
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if o.tenants == 0 || o.accounts == 0 || o.hours == 0 {
        return Err("--tenants, --accounts-per-tenant and --hours must be at least 1".into());
    }
    if o.rows.is_some() && o.rows_per_account.is_some() {
        return Err("give --rows or --rows-per-account, not both".into());
    }
    if o.batch_rows == Some(0) {
        return Err("--batch-rows must be at least 1".into());
    }
    if o.batch_rows.is_some() && o.out_dir.is_none() {
        return Err("--batch-rows needs --out-dir".into());
    }
    if o.manifest.is_some() && o.out_dir.is_some() {
        return Err(
            "--manifest is for stdout output; --out-dir always writes DIR/manifest.tsv".into(),
        );
    }
    Ok(o)
}

// -------------------------------------------------------------- utilities

/// splitmix64.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, a: u64, b: u64) -> Rng {
        let mut r = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        let x = r.next() ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut r = Rng(x);
        let y = r.next() ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Rng(y)
    }
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        let a = (a & !0xF000) | 0x4000; // version 4
        let b = (b & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `YYYY-MM-DDTHH:00:00Z` of an hour since the epoch.
fn iso_hour(h: i64) -> String {
    let (y, m, d) = civil_from_days(h.div_euclid(24));
    format!("{y:04}-{m:02}-{d:02}T{:02}:00:00Z", h.rem_euclid(24))
}

/// Per charge hour: the four timestamp strings and the invoice month.
struct HourInfo {
    cps: String,
    cpe: String,
    bps: String,
    bpe: String,
    yyyymm: String,
}

fn hour_info(h: i64) -> HourInfo {
    let (y, m, _) = civil_from_days(h.div_euclid(24));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    HourInfo {
        cps: iso_hour(h),
        cpe: iso_hour(h + 1),
        bps: format!("{y:04}-{m:02}-01T00:00:00Z"),
        bpe: format!("{ny:04}-{nm:02}-01T00:00:00Z"),
        yyyymm: format!("{y:04}{m:02}"),
    }
}

#[inline]
fn push_u128(out: &mut Vec<u8>, mut v: u128) {
    let mut buf = [0u8; 40];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Fixed-point value in units of 1e-11, printed with `decimals` (≤ 11) digits.
#[inline]
fn push_fixed(out: &mut Vec<u8>, v_e11: i128, decimals: u32) {
    if v_e11 < 0 {
        out.push(b'-');
    }
    let v = v_e11.unsigned_abs() / 10u128.pow(11 - decimals);
    let scale = 10u128.pow(decimals);
    push_u128(out, v / scale);
    if decimals > 0 {
        out.push(b'.');
        let frac = v % scale;
        let mut buf = [b'0'; 11];
        let mut f = frac;
        for k in (0..decimals as usize).rev() {
            buf[k] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&buf[..decimals as usize]);
    }
}

/// RFC 4180 quoting when needed.
fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

// ------------------------------------------------------------- catalogue

struct Service {
    name: &'static str,
    category: &'static str,
    subcategory: &'static str,
    resource_type: &'static str,
    pricing_unit: &'static str,
    consumed_unit: &'static str,
    /// List unit price in 1e-11 of the currency.
    price_e11: u64,
    /// Typical hourly pricing quantity, in millionths.
    qty_micro: u64,
    /// AWS: ARN service; Azure: resource provider path; GCP: API host.
    id_a: &'static str,
    /// Resource path fragment after the scope.
    id_b: &'static str,
    name_prefix: &'static str,
    x_service_code: &'static str,
    x_usage_type: &'static str,
    x_operation: &'static str,
    sku_meter: &'static str,
    description: &'static str,
    /// SkuPriceDetails JSON (unquoted) or "".
    details: &'static str,
    /// Can carry a commitment discount.
    committable: bool,
}

struct Region {
    id: &'static str,
    name: &'static str,
    zones: &'static [&'static str],
}

struct Provider {
    name: &'static str,
    publisher: &'static str,
    invoice_issuer: &'static str,
    billing_account_type: &'static str,
    sub_account_type: &'static str,
    commitment_type: &'static str,
    commitment_category: &'static str,
    services: &'static [Service],
    regions: &'static [Region],
}

macro_rules! svc {
    ($name:expr, $cat:expr, $sub:expr, $rtype:expr, $punit:expr, $cunit:expr, $price:expr, $qty:expr,
     $a:expr, $b:expr, $np:expr, $xs:expr, $xu:expr, $xo:expr, $meter:expr, $desc:expr, $details:expr, $commit:expr) => {
        Service {
            name: $name,
            category: $cat,
            subcategory: $sub,
            resource_type: $rtype,
            pricing_unit: $punit,
            consumed_unit: $cunit,
            price_e11: $price,
            qty_micro: $qty,
            id_a: $a,
            id_b: $b,
            name_prefix: $np,
            x_service_code: $xs,
            x_usage_type: $xu,
            x_operation: $xo,
            sku_meter: $meter,
            description: $desc,
            details: $details,
            committable: $commit,
        }
    };
}

#[rustfmt::skip]
const AWS_SERVICES: &[Service] = &[
    svc!("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "Instance", "Hours", "Hours", 9_600_000_000, 1_000_000,
        "ec2", "instance", "i", "AmazonEC2", "BoxUsage:m5.large", "RunInstances", "Compute Instance",
        "$0.096 per On Demand Linux m5.large Instance Hour", r#"{"CoreCount":2,"InstanceType":"m5.large","OperatingSystem":"Linux"}"#, true),
    svc!("Amazon Elastic Compute Cloud", "Compute", "Virtual Machines", "Instance", "Hours", "Hours", 38_400_000_000, 1_000_000,
        "ec2", "instance", "i", "AmazonEC2", "BoxUsage:c6i.2xlarge", "RunInstances", "Compute Instance",
        "$0.384 per On Demand Linux c6i.2xlarge Instance Hour", r#"{"CoreCount":8,"InstanceType":"c6i.2xlarge","OperatingSystem":"Linux"}"#, true),
    svc!("Amazon Simple Storage Service", "Storage", "Object Storage", "Bucket", "GB-Mo", "GB-Mo", 2_300_000_000, 1_369_863,
        "s3", "", "bucket", "AmazonS3", "TimedStorage-ByteHrs", "StandardStorage", "Storage",
        "$0.023 per GB - first 50 TB / month of storage used", r#"{"StorageClass":"Standard"}"#, false),
    svc!("Amazon Relational Database Service", "Databases", "Relational Databases", "DB Instance", "Hours", "Hours", 25_000_000_000, 1_000_000,
        "rds", "db", "db", "AmazonRDS", "InstanceUsage:db.r5.large", "CreateDBInstance:0014", "Database Instance",
        "$0.25 per RDS db.r5.large Multi-AZ instance hour (or partial hour) running PostgreSQL", r#"{"DatabaseEngine":"PostgreSQL","InstanceType":"db.r5.large"}"#, true),
    svc!("AWS Lambda", "Compute", "Serverless Compute", "Function", "Requests", "Requests", 20_000, 180_000_000_000,
        "lambda", "function", "fn", "AWSLambda", "Request", "Invoke", "Serverless",
        "AWS Lambda - Total Requests - US East (Northern Virginia)", "", false),
    svc!("Amazon CloudFront", "Networking", "Content Delivery", "Distribution", "GB", "GB", 8_500_000_000, 3_500_000,
        "cloudfront", "distribution", "cdn", "AmazonCloudFront", "US-DataTransfer-Out-Bytes", "GET", "Data Transfer",
        "$0.085 per GB - first 10 TB / month data transfer out beyond the global free tier", "", false),
    svc!("Amazon DynamoDB", "Databases", "NoSQL Databases", "Table", "ReadRequestUnits", "ReadRequestUnits", 25_000, 90_000_000_000,
        "dynamodb", "table", "tbl", "AmazonDynamoDB", "ReadRequestUnits", "GetItem", "Request",
        "$0.25 per million read request units", "", false),
    svc!("Amazon CloudWatch", "Management and Governance", "Observability", "Metric", "Metrics", "Metrics", 30_000_000_000, 41_096,
        "cloudwatch", "metric", "mt", "AmazonCloudWatch", "CW:MetricMonitorUsage", "MetricStorage", "Metric",
        "$0.30 per metric-month - first 10,000 metrics", "", false),
];

#[rustfmt::skip]
const AZURE_SERVICES: &[Service] = &[
    svc!("Virtual Machines", "Compute", "Virtual Machines", "Virtual machine", "1 Hour", "Hours", 9_600_000_000, 1_000_000,
        "Microsoft.Compute/virtualMachines", "", "vm", "Microsoft.Compute", "D2s v5", "Consumption", "D2s v5",
        "Virtual Machines Dsv5 Series - D2s v5 - US East", r#"{"CoreCount":2,"MeterCategory":"Virtual Machines","MeterSubCategory":"Dsv5 Series"}"#, true),
    svc!("Storage Accounts", "Storage", "Object Storage", "Storage account", "1 GB/Month", "GB/Month", 2_080_000_000, 2_739_726,
        "Microsoft.Storage/storageAccounts", "", "st", "Microsoft.Storage", "Hot LRS Data Stored", "Consumption", "Hot LRS Data Stored",
        "Blob Storage, Hot LRS Data Stored", r#"{"MeterCategory":"Storage","AccessTier":"Hot"}"#, false),
    svc!("Azure SQL Database", "Databases", "Relational Databases", "SQL database", "1 Hour", "Hours", 50_400_000_000, 1_000_000,
        "Microsoft.Sql/servers", "databases", "sqldb", "Microsoft.Sql", "vCore", "Consumption", "vCore",
        "SQL Database Single/Elastic Pool General Purpose - Compute Gen5 - 2 vCore", "", true),
    svc!("Azure Kubernetes Service", "Compute", "Containers", "Kubernetes service", "1 Hour", "Hours", 10_000_000_000, 1_000_000,
        "Microsoft.ContainerService/managedClusters", "", "aks", "Microsoft.ContainerService", "Standard Uptime SLA", "Consumption", "Uptime SLA",
        "Azure Kubernetes Service - Standard - Uptime SLA", "", false),
    svc!("Bandwidth", "Networking", "Network Connectivity", "Public IP address", "1 GB", "GB", 8_700_000_000, 1_200_000,
        "Microsoft.Network/publicIPAddresses", "", "pip", "Microsoft.Network", "Standard Data Transfer Out", "Consumption", "Data Transfer Out",
        "Bandwidth - Rtn Preference: MGN - Standard Data Transfer Out, Zone 1", "", false),
    svc!("Azure Monitor", "Management and Governance", "Observability", "Log Analytics workspace", "1 GB", "GB", 276_000_000_000, 150_000,
        "Microsoft.OperationalInsights/workspaces", "", "log", "Microsoft.OperationalInsights", "Analytics Logs Data Ingestion", "Consumption", "Data Ingestion",
        "Log Analytics - Analytics Logs Data Ingestion", "", false),
    svc!("Azure OpenAI", "AI and Machine Learning", "Generative AI", "Cognitive Services account", "1K Tokens", "Tokens", 250_000_000, 2_400_000_000,
        "Microsoft.CognitiveServices/accounts", "", "oai", "Microsoft.CognitiveServices", "gpt-4o-input-global-Tokens", "Consumption", "Input Tokens",
        "Azure OpenAI - gpt-4o input Global Tokens", "", false),
];

#[rustfmt::skip]
const GCP_SERVICES: &[Service] = &[
    svc!("Compute Engine", "Compute", "Virtual Machines", "Instance", "hour", "hour", 9_712_000_000, 1_000_000,
        "compute", "instances", "vm", "6F81-5844-456A", "N2 Instance Core", "compute.instances.insert", "N2 Instance Core",
        "N2 Instance Core running in Americas", r#"{"CoreCount":2,"MachineType":"n2-standard-2"}"#, true),
    svc!("Cloud Storage", "Storage", "Object Storage", "Bucket", "gibibyte month", "gibibyte", 2_000_000_000, 4_109_589,
        "storage", "buckets", "bkt", "95FF-2EF5-5EA1", "Standard Storage US Multi-region", "storage.objects.create", "Standard Storage",
        "Standard Storage US Multi-region", r#"{"StorageClass":"STANDARD"}"#, false),
    svc!("BigQuery", "Analytics", "Data Processing", "Dataset", "tebibyte", "tebibyte", 625_000_000_000, 20_000,
        "bigquery", "datasets", "ds", "24E6-581D-38E5", "Analysis", "jobs.query", "Analysis",
        "Analysis (on-demand), US multi-region", "", false),
    svc!("Cloud SQL", "Databases", "Relational Databases", "Instance", "hour", "hour", 19_340_000_000, 1_000_000,
        "sqladmin", "instances", "sql", "9662-B51E-5089", "Cloud SQL for PostgreSQL: Zonal - 2 vCPU", "instances.insert", "vCPU",
        "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas", "", true),
    svc!("Google Kubernetes Engine", "Compute", "Containers", "Cluster", "hour", "hour", 10_000_000_000, 1_000_000,
        "container", "clusters", "gke", "CCD8-9BF1-090E", "Regional Kubernetes Clusters", "clusters.create", "Cluster Management",
        "Regional Kubernetes Clusters, cluster management fee", "", false),
    svc!("Cloud Run", "Compute", "Serverless Compute", "Service", "vCPU-second", "vCPU-second", 2_400_000, 1_800_000_000,
        "run", "services", "run", "152E-C115-5142", "CPU Allocation Time (tier 1)", "services.create", "CPU Allocation Time",
        "CPU Allocation Time (tier 1)", "", false),
    svc!("Vertex AI", "AI and Machine Learning", "AI Platforms", "Endpoint", "hour", "hour", 75_000_000_000, 1_000_000,
        "aiplatform", "endpoints", "ep", "C7E2-9256-1C43", "Vertex AI: Online/Batch Prediction", "endpoints.predict", "Prediction",
        "Vertex AI: Online/Batch Prediction N1 Predefined Instance Core running in Americas", "", false),
];

const AWS_REGIONS: &[Region] = &[
    Region {
        id: "us-east-1",
        name: "US East (N. Virginia)",
        zones: &["us-east-1a", "us-east-1b", "us-east-1c"],
    },
    Region {
        id: "us-west-2",
        name: "US West (Oregon)",
        zones: &["us-west-2a", "us-west-2b"],
    },
    Region {
        id: "eu-west-1",
        name: "Europe (Ireland)",
        zones: &["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    },
    Region {
        id: "eu-central-1",
        name: "Europe (Frankfurt)",
        zones: &["eu-central-1a", "eu-central-1b"],
    },
    Region {
        id: "ap-southeast-1",
        name: "Asia Pacific (Singapore)",
        zones: &["ap-southeast-1a", "ap-southeast-1b"],
    },
];
const AZURE_REGIONS: &[Region] = &[
    Region {
        id: "eastus",
        name: "East US",
        zones: &["1", "2", "3"],
    },
    Region {
        id: "westeurope",
        name: "West Europe",
        zones: &["1", "2", "3"],
    },
    Region {
        id: "northeurope",
        name: "North Europe",
        zones: &["1", "2"],
    },
    Region {
        id: "westus2",
        name: "West US 2",
        zones: &["1", "2", "3"],
    },
    Region {
        id: "southeastasia",
        name: "Southeast Asia",
        zones: &["1", "2"],
    },
];
const GCP_REGIONS: &[Region] = &[
    Region {
        id: "us-central1",
        name: "Iowa",
        zones: &["us-central1-a", "us-central1-b", "us-central1-c"],
    },
    Region {
        id: "us-east4",
        name: "Northern Virginia",
        zones: &["us-east4-a", "us-east4-b"],
    },
    Region {
        id: "europe-west1",
        name: "Belgium",
        zones: &["europe-west1-b", "europe-west1-c"],
    },
    Region {
        id: "europe-west4",
        name: "Netherlands",
        zones: &["europe-west4-a", "europe-west4-b"],
    },
    Region {
        id: "asia-east1",
        name: "Taiwan",
        zones: &["asia-east1-a", "asia-east1-b"],
    },
];

const PROVIDERS: [Provider; 3] = [
    Provider {
        name: "AWS",
        publisher: "AWS",
        invoice_issuer: "AWS",
        billing_account_type: "Management Account",
        sub_account_type: "Member Account",
        commitment_type: "Savings Plan",
        commitment_category: "Spend",
        services: AWS_SERVICES,
        regions: AWS_REGIONS,
    },
    Provider {
        name: "Microsoft",
        publisher: "Microsoft",
        invoice_issuer: "Microsoft",
        billing_account_type: "Billing Profile",
        sub_account_type: "Subscription",
        commitment_type: "Reservation",
        commitment_category: "Usage",
        services: AZURE_SERVICES,
        regions: AZURE_REGIONS,
    },
    Provider {
        name: "Google Cloud",
        publisher: "Google Cloud",
        invoice_issuer: "Google Cloud",
        billing_account_type: "Billing Account",
        sub_account_type: "Project",
        commitment_type: "Committed Use Discount",
        commitment_category: "Usage",
        services: GCP_SERVICES,
        regions: GCP_REGIONS,
    },
];

const TEAMS: &[&str] = &[
    "payments", "search", "data", "platform", "mobile", "ml", "web", "identity", "growth",
    "billing",
];
const ENVS: &[&str] = &["prod", "prod", "staging", "dev"];
const WORDS: &[&str] = &[
    "atlas", "bison", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "iris", "juniper",
];

// ---------------------------------------------------------------- accounts

struct Commitment {
    id: String,
    name: String,
}

struct Resource {
    svc: &'static Service,
    region: &'static Region,
    zone: &'static str,
    id: String,
    name: String,
    sku_id: String,
    sku_price_id: String,
    /// CSV-ready (quoted) Tags JSON, or "".
    tags: String,
    /// CSV-ready SkuPriceDetails, or "".
    details: String,
    description: String,
    commitment: Option<Commitment>,
    spot: bool,
}

struct Account {
    tenant: u64,
    index: u64,
    tenant_id: String,
    cloud_account_id: String,
    provider: &'static Provider,
    billing_account_id: String,
    billing_account_name: String,
    sub_account_id: String,
    sub_account_name: String,
    currency: &'static str,
    /// Negotiated discount in basis points.
    discount_bp: u64,
    resources: Vec<Resource>,
    rows: u64,
    rng: Rng,
}

fn digits(rng: &mut Rng, n: u32) -> String {
    format!("{:0width$}", rng.below(10u64.pow(n)), width = n as usize)
}

fn make_account(
    seed: u64,
    tenant: u64,
    index: u64,
    accounts_per_tenant: u64,
    rows: u64,
    hours: u64,
) -> Account {
    let mut trng = Rng::new(seed, tenant, u64::MAX);
    let tenant_id = trng.uuid();
    let mut rng = Rng::new(seed, tenant, index);
    let cloud_account_id = rng.uuid();
    let provider = &PROVIDERS[((tenant * accounts_per_tenant + index) % 3) as usize];
    let word = *rng.pick(WORDS);
    let (billing_account_id, sub_account_id, sub_account_name) = match provider.name {
        "AWS" => {
            let ba = digits(&mut rng, 12);
            let sa = digits(&mut rng, 12);
            (ba, sa, format!("{word}-{}-{tenant}", rng.pick(ENVS)))
        }
        "Microsoft" => (
            format!("{}:{}_2019-05-31", digits(&mut rng, 8), rng.uuid()),
            format!("/subscriptions/{}", rng.uuid()),
            format!("{word}-subscription-{tenant}"),
        ),
        _ => {
            let ba = format!(
                "{:06X}-{:06X}-{:06X}",
                rng.below(1 << 24),
                rng.below(1 << 24),
                rng.below(1 << 24)
            );
            let p = format!("{word}-prod-{}", 100_000 + rng.below(900_000));
            (ba, p.clone(), p)
        }
    };
    let currency = if rng.below(8) == 0 { "EUR" } else { "USD" };
    let discount_bp = rng.below(1500);
    let n_res = rows.div_ceil(hours).max(1);
    let mut resources = Vec::with_capacity(n_res as usize);
    for r in 0..n_res {
        let svc = rng.pick(provider.services);
        let region = rng.pick(provider.regions);
        let zone = *rng.pick(region.zones);
        let team = *rng.pick(TEAMS);
        let env = *rng.pick(ENVS);
        let name = format!("{}-{team}-{env}-{r:05}", svc.name_prefix);
        let id = match provider.name {
            "AWS" => match svc.id_a {
                "s3" => format!("arn:aws:s3:::{name}"),
                "ec2" => format!(
                    "arn:aws:ec2:{}:{sub_account_id}:instance/i-{:017x}",
                    region.id,
                    rng.next() >> 4
                ),
                _ => format!(
                    "arn:aws:{}:{}:{sub_account_id}:{}/{name}",
                    svc.id_a, region.id, svc.id_b
                ),
            },
            "Microsoft" => {
                let mut s = format!(
                    "{sub_account_id}/resourceGroups/rg-{team}-{env}/providers/{}/{name}",
                    svc.id_a
                );
                if !svc.id_b.is_empty() {
                    s.push_str(&format!("/{}/{name}-db", svc.id_b));
                }
                s
            }
            _ => format!(
                "//{}.googleapis.com/projects/{sub_account_id}/{}/{name}",
                svc.id_a, svc.id_b
            ),
        };
        let tags = match rng.below(10) {
            0 => String::new(),
            1 => csv_quote(&format!(
                r#"{{"env":"{env}","team":"{team}","cost-center":"CC-{}","app":"{}-{team}"}}"#,
                1000 + rng.below(9000),
                rng.pick(WORDS)
            )),
            _ => csv_quote(&format!(
                r#"{{"env":"{env}","team":"{team}","cost-center":"CC-{}"}}"#,
                1000 + rng.below(9000)
            )),
        };
        let commitment = (svc.committable && rng.below(10) < 3).then(|| {
            let u = rng.uuid();
            match provider.name {
                "AWS" => Commitment {
                    id: format!("arn:aws:savingsplans::{billing_account_id}:savingsplan/{u}"),
                    name: format!("Compute Savings Plan {}", &u[..8]),
                },
                "Microsoft" => Commitment {
                    id: format!(
                        "/providers/Microsoft.Capacity/reservationOrders/{u}/reservations/{}",
                        rng.uuid()
                    ),
                    name: format!("VM_RI_{}_{}", region.id, &u[..6]),
                },
                _ => Commitment {
                    id: format!(
                        "projects/{sub_account_id}/regions/{}/commitments/cud-{}",
                        region.id,
                        &u[..8]
                    ),
                    name: format!("cud-{}-{}", region.id, &u[..8]),
                },
            }
        });
        let spot = commitment.is_none() && svc.committable && rng.below(20) == 0;
        let description = if rng.below(50) == 0 {
            csv_quote(&format!("{}, {}", svc.description, region.name))
        } else {
            csv_quote(svc.description)
        };
        resources.push(Resource {
            svc,
            region,
            zone,
            sku_id: format!("{:012X}", rng.next() >> 16),
            sku_price_id: format!("{:012X}.{:08X}", rng.next() >> 16, rng.next() >> 32),
            id,
            name,
            tags,
            details: if svc.details.is_empty() {
                String::new()
            } else {
                csv_quote(svc.details)
            },
            description,
            commitment,
            spot,
        });
    }
    Account {
        tenant,
        index,
        tenant_id,
        cloud_account_id,
        provider,
        billing_account_name: format!("{} {} billing {}", word, provider.name, tenant),
        billing_account_id,
        sub_account_id,
        sub_account_name,
        currency,
        discount_bp,
        resources,
        rows,
        rng,
    }
}

// ----------------------------------------------------------------- columns

#[derive(Clone, Copy, Debug)]
enum C {
    AvailabilityZone,
    BilledCost,
    BillingAccountId,
    BillingAccountName,
    BillingAccountType,
    BillingCurrency,
    BillingPeriodEnd,
    BillingPeriodStart,
    CapacityReservationId,
    CapacityReservationStatus,
    ChargeCategory,
    ChargeClass,
    ChargeDescription,
    ChargeFrequency,
    ChargePeriodEnd,
    ChargePeriodStart,
    CommitmentDiscountCategory,
    CommitmentDiscountId,
    CommitmentDiscountName,
    CommitmentDiscountQuantity,
    CommitmentDiscountStatus,
    CommitmentDiscountType,
    CommitmentDiscountUnit,
    ConsumedQuantity,
    ConsumedUnit,
    ContractedCost,
    ContractedUnitPrice,
    EffectiveCost,
    InvoiceId,
    InvoiceIssuerName,
    ListCost,
    ListUnitPrice,
    PricingCategory,
    PricingCurrency,
    PricingCurrencyContractedUnitPrice,
    PricingCurrencyEffectiveCost,
    PricingCurrencyListUnitPrice,
    PricingQuantity,
    PricingUnit,
    ProviderName,
    PublisherName,
    RegionId,
    RegionName,
    ResourceId,
    ResourceName,
    ResourceType,
    ServiceCategory,
    ServiceName,
    ServiceSubcategory,
    SkuId,
    SkuMeter,
    SkuPriceDetails,
    SkuPriceId,
    SubAccountId,
    SubAccountName,
    SubAccountType,
    Tags,
    XServiceCode,
    XUsageType,
    XOperation,
    XCostCategories,
}

const FULL: &[C] = &[
    C::AvailabilityZone,
    C::BilledCost,
    C::BillingAccountId,
    C::BillingAccountName,
    C::BillingAccountType,
    C::BillingCurrency,
    C::BillingPeriodEnd,
    C::BillingPeriodStart,
    C::CapacityReservationId,
    C::CapacityReservationStatus,
    C::ChargeCategory,
    C::ChargeClass,
    C::ChargeDescription,
    C::ChargeFrequency,
    C::ChargePeriodEnd,
    C::ChargePeriodStart,
    C::CommitmentDiscountCategory,
    C::CommitmentDiscountId,
    C::CommitmentDiscountName,
    C::CommitmentDiscountQuantity,
    C::CommitmentDiscountStatus,
    C::CommitmentDiscountType,
    C::CommitmentDiscountUnit,
    C::ConsumedQuantity,
    C::ConsumedUnit,
    C::ContractedCost,
    C::ContractedUnitPrice,
    C::EffectiveCost,
    C::InvoiceId,
    C::InvoiceIssuerName,
    C::ListCost,
    C::ListUnitPrice,
    C::PricingCategory,
    C::PricingCurrency,
    C::PricingCurrencyContractedUnitPrice,
    C::PricingCurrencyEffectiveCost,
    C::PricingCurrencyListUnitPrice,
    C::PricingQuantity,
    C::PricingUnit,
    C::ProviderName,
    C::PublisherName,
    C::RegionId,
    C::RegionName,
    C::ResourceId,
    C::ResourceName,
    C::ResourceType,
    C::ServiceCategory,
    C::ServiceName,
    C::ServiceSubcategory,
    C::SkuId,
    C::SkuMeter,
    C::SkuPriceDetails,
    C::SkuPriceId,
    C::SubAccountId,
    C::SubAccountName,
    C::SubAccountType,
    C::Tags,
    C::XServiceCode,
    C::XUsageType,
    C::XOperation,
    C::XCostCategories,
];

const MINIMAL: &[C] = &[
    C::BilledCost,
    C::BillingAccountId,
    C::BillingCurrency,
    C::BillingPeriodEnd,
    C::BillingPeriodStart,
    C::ChargeCategory,
    C::ChargeFrequency,
    C::ChargePeriodEnd,
    C::ChargePeriodStart,
    C::ConsumedQuantity,
    C::ContractedCost,
    C::EffectiveCost,
    C::ListCost,
    C::PricingQuantity,
    C::ProviderName,
    C::RegionId,
    C::ResourceId,
    C::ServiceCategory,
    C::ServiceName,
    C::SubAccountId,
    C::Tags,
];

fn header_name(c: C) -> &'static str {
    match c {
        C::XServiceCode => "x_ServiceCode",
        C::XUsageType => "x_UsageType",
        C::XOperation => "x_Operation",
        C::XCostCategories => "x_CostCategories",
        // Debug of the variant is the FOCUS column id.
        _ => "",
    }
}

fn write_header(out: &mut Vec<u8>, cols: &[C]) {
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let n = header_name(*c);
        if n.is_empty() {
            out.extend_from_slice(format!("{c:?}").as_bytes());
        } else {
            out.extend_from_slice(n.as_bytes());
        }
    }
    out.push(b'\n');
}

// -------------------------------------------------------------------- rows

#[derive(Clone, Copy, PartialEq, Eq)]
enum Charge {
    Usage,
    Tax,
    Credit,
    Purchase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bad {
    None,
    Number,
    Currency,
    EndBeforeStart,
    Category,
    Tags,
}

/// Values of one row that vary per hour.
struct RowVals {
    charge: Charge,
    correction: bool,
    qty_micro: u128,
    list_price: i128,
    contracted_price: i128,
    list_cost: i128,
    contracted_cost: i128,
    effective_cost: i128,
    billed_cost: i128,
    committed: bool,
    bad: Bad,
}

const E6: u128 = 1_000_000;

fn row_vals(acct: &mut Account, res_idx: usize, bad: Bad) -> RowVals {
    let rng = &mut acct.rng;
    let res = &acct.resources[res_idx];
    let svc = res.svc;
    let draw = rng.below(10_000);
    let charge = match draw {
        0..=9_799 => Charge::Usage,
        9_800..=9_899 => Charge::Tax,
        9_900..=9_949 => Charge::Credit,
        _ => Charge::Purchase,
    };
    // Hourly instances run the whole hour; metered services vary ±50 %.
    let qty_micro = if svc.qty_micro == 1_000_000 {
        E6
    } else {
        u128::from(svc.qty_micro) * u128::from(500 + rng.below(1001)) / 1000
    };
    let list_price = i128::from(svc.price_e11);
    let contracted_price = list_price * i128::from(10_000 - acct.discount_bp) / 10_000;
    let list_cost = (list_price as u128 * qty_micro / E6) as i128;
    let contracted_cost = (contracted_price as u128 * qty_micro / E6) as i128;
    let committed = res.commitment.is_some() && charge == Charge::Usage;
    let (mut effective_cost, mut billed_cost) = if committed {
        (contracted_cost * 72 / 100, 0)
    } else if res.spot {
        (contracted_cost * 35 / 100, contracted_cost * 35 / 100)
    } else {
        (contracted_cost, contracted_cost)
    };
    let (mut list_cost, mut contracted_cost) = (list_cost, contracted_cost);
    match charge {
        Charge::Usage => {}
        Charge::Tax => {
            let t = contracted_cost * 8 / 100;
            (list_cost, contracted_cost, effective_cost, billed_cost) = (t, t, t, t);
        }
        Charge::Credit => {
            let c = -(contracted_cost * 5);
            (list_cost, contracted_cost, effective_cost, billed_cost) = (c, c, c, c);
        }
        Charge::Purchase => {
            let p = contracted_cost * 24;
            (list_cost, contracted_cost, effective_cost, billed_cost) = (p, p, p, p);
        }
    }
    RowVals {
        charge,
        correction: rng.below(500) == 0,
        qty_micro,
        list_price,
        contracted_price,
        list_cost,
        contracted_cost,
        effective_cost,
        billed_cost,
        committed,
        bad,
    }
}

fn write_row(
    out: &mut Vec<u8>,
    cols: &[C],
    acct: &Account,
    res: &Resource,
    hour: &HourInfo,
    v: &RowVals,
) {
    let p = acct.provider;
    let svc = res.svc;
    let is_usage = v.charge == Charge::Usage;
    // AWS exports carry 11 decimals, the others 10.
    let cost_dec = if p.name == "AWS" { 11 } else { 10 };
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let s: &[u8] = match c {
            C::AvailabilityZone => res.zone.as_bytes(),
            C::BilledCost => {
                if v.bad == Bad::Number {
                    b"\"12,5\""
                } else {
                    push_fixed(out, v.billed_cost, cost_dec);
                    b""
                }
            }
            C::BillingAccountId => acct.billing_account_id.as_bytes(),
            C::BillingAccountName => acct.billing_account_name.as_bytes(),
            C::BillingAccountType => p.billing_account_type.as_bytes(),
            C::BillingCurrency => {
                if v.bad == Bad::Currency {
                    b"XYZ"
                } else {
                    acct.currency.as_bytes()
                }
            }
            C::BillingPeriodEnd => hour.bpe.as_bytes(),
            C::BillingPeriodStart => hour.bps.as_bytes(),
            C::CapacityReservationId | C::CapacityReservationStatus => b"",
            C::ChargeCategory => match (v.bad, v.charge) {
                (Bad::Category, _) => b"Usagee",
                (_, Charge::Usage) => b"Usage",
                (_, Charge::Tax) => b"Tax",
                (_, Charge::Credit) => b"Credit",
                (_, Charge::Purchase) => b"Purchase",
            },
            C::ChargeClass => {
                if v.correction {
                    b"Correction"
                } else {
                    b""
                }
            }
            C::ChargeDescription => match v.charge {
                Charge::Usage => res.description.as_bytes(),
                Charge::Tax => b"Sales tax",
                Charge::Credit => b"Promotional credit",
                Charge::Purchase => b"\"Upfront fee, 1 year term\"",
            },
            C::ChargeFrequency => match v.charge {
                Charge::Purchase => b"One-Time",
                Charge::Tax | Charge::Credit => b"Recurring",
                Charge::Usage => b"Usage-Based",
            },
            C::ChargePeriodEnd => {
                if v.bad == Bad::EndBeforeStart {
                    b"2000-01-01T00:00:00Z"
                } else {
                    hour.cpe.as_bytes()
                }
            }
            C::ChargePeriodStart => hour.cps.as_bytes(),
            C::CommitmentDiscountCategory => {
                if v.committed {
                    p.commitment_category.as_bytes()
                } else {
                    b""
                }
            }
            C::CommitmentDiscountId => match (&res.commitment, v.committed) {
                (Some(cm), true) => cm.id.as_bytes(),
                _ => b"",
            },
            C::CommitmentDiscountName => match (&res.commitment, v.committed) {
                (Some(cm), true) => cm.name.as_bytes(),
                _ => b"",
            },
            C::CommitmentDiscountQuantity => {
                if v.committed {
                    if p.commitment_category == "Spend" {
                        push_fixed(out, v.effective_cost, cost_dec);
                    } else {
                        push_fixed(out, (v.qty_micro * 100_000) as i128, 6);
                    }
                }
                b""
            }
            C::CommitmentDiscountStatus => {
                if v.committed {
                    b"Used"
                } else {
                    b""
                }
            }
            C::CommitmentDiscountType => {
                if v.committed {
                    p.commitment_type.as_bytes()
                } else {
                    b""
                }
            }
            C::CommitmentDiscountUnit => {
                if v.committed {
                    if p.commitment_category == "Spend" {
                        acct.currency.as_bytes()
                    } else {
                        b"Hours"
                    }
                } else {
                    b""
                }
            }
            C::ConsumedQuantity | C::PricingQuantity => {
                if is_usage {
                    push_fixed(out, (v.qty_micro * 100_000) as i128, 6);
                }
                b""
            }
            C::ConsumedUnit => {
                if is_usage {
                    svc.consumed_unit.as_bytes()
                } else {
                    b""
                }
            }
            C::PricingUnit => {
                if is_usage {
                    svc.pricing_unit.as_bytes()
                } else {
                    b""
                }
            }
            C::ContractedCost => {
                push_fixed(out, v.contracted_cost, cost_dec);
                b""
            }
            C::ContractedUnitPrice | C::PricingCurrencyContractedUnitPrice => {
                if is_usage {
                    push_fixed(out, v.contracted_price, 11);
                }
                b""
            }
            C::EffectiveCost | C::PricingCurrencyEffectiveCost => {
                push_fixed(out, v.effective_cost, cost_dec);
                b""
            }
            C::InvoiceId => {
                out.extend_from_slice(b"INV-");
                out.extend_from_slice(hour.yyyymm.as_bytes());
                out.push(b'-');
                push_u128(out, u128::from(acct.tenant * 1000 + acct.index));
                b""
            }
            C::InvoiceIssuerName => p.invoice_issuer.as_bytes(),
            C::ListCost => {
                push_fixed(out, v.list_cost, cost_dec);
                b""
            }
            C::ListUnitPrice | C::PricingCurrencyListUnitPrice => {
                if is_usage {
                    push_fixed(out, v.list_price, 11);
                }
                b""
            }
            C::PricingCategory => {
                if !is_usage {
                    b"Standard"
                } else if v.committed {
                    b"Committed"
                } else if res.spot {
                    b"Dynamic"
                } else {
                    b"Standard"
                }
            }
            C::PricingCurrency => acct.currency.as_bytes(),
            C::ProviderName => p.name.as_bytes(),
            C::PublisherName => p.publisher.as_bytes(),
            C::RegionId => res.region.id.as_bytes(),
            C::RegionName => res.region.name.as_bytes(),
            C::ResourceId => res.id.as_bytes(),
            C::ResourceName => res.name.as_bytes(),
            C::ResourceType => svc.resource_type.as_bytes(),
            C::ServiceCategory => svc.category.as_bytes(),
            C::ServiceName => svc.name.as_bytes(),
            C::ServiceSubcategory => svc.subcategory.as_bytes(),
            C::SkuId => res.sku_id.as_bytes(),
            C::SkuMeter => svc.sku_meter.as_bytes(),
            C::SkuPriceDetails => res.details.as_bytes(),
            C::SkuPriceId => res.sku_price_id.as_bytes(),
            C::SubAccountId => acct.sub_account_id.as_bytes(),
            C::SubAccountName => acct.sub_account_name.as_bytes(),
            C::SubAccountType => p.sub_account_type.as_bytes(),
            C::Tags => {
                if v.bad == Bad::Tags {
                    b"\"[\"\"not\"\",\"\"an object\"\"]\""
                } else {
                    res.tags.as_bytes()
                }
            }
            C::XServiceCode => svc.x_service_code.as_bytes(),
            C::XUsageType => svc.x_usage_type.as_bytes(),
            C::XOperation => svc.x_operation.as_bytes(),
            C::XCostCategories => {
                if res.tags.is_empty() {
                    b""
                } else {
                    b"\"{\"\"business-unit\"\":\"\"engineering\"\"}\""
                }
            }
        };
        out.extend_from_slice(s);
    }
    out.push(b'\n');
}

// -------------------------------------------------------------------- main

struct ManifestEntry {
    file: String,
    tenant: u64,
    tenant_id: String,
    account: u64,
    cloud_account_id: String,
    provider: &'static str,
    billing_account_id: String,
    rows: u64,
    first_line: u64,
    last_line: u64,
    bad_rows: u64,
}

fn write_manifest(path: &Path, entries: &[ManifestEntry]) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(
        w,
        "file\ttenant_index\ttenant_id\taccount_index\tcloud_account_id\tprovider\tbilling_account_id\trows\tfirst_line\tlast_line\tbad_rows"
    )?;
    for e in entries {
        writeln!(
            w,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            e.file,
            e.tenant,
            e.tenant_id,
            e.account,
            e.cloud_account_id,
            e.provider,
            e.billing_account_id,
            e.rows,
            e.first_line,
            e.last_line,
            e.bad_rows
        )?;
    }
    w.flush()
}

/// Output sink: stdout stream or one file per account/batch.
struct Sink {
    w: Box<dyn Write>,
    /// Rows written to the current file.
    file_rows: u64,
    /// Lines written to the current file (header included).
    file_lines: u64,
}

fn run(o: &Opts) -> io::Result<(u64, u64)> {
    let cols = if o.minimal { MINIMAL } else { FULL };
    let n_accounts = o.tenants * o.accounts;
    let mut header = Vec::new();
    write_header(&mut header, cols);
    let hours: Vec<HourInfo> = (0..o.hours as i64)
        .map(|h| hour_info(o.start_hour + h))
        .collect();
    let stdout_mode = o.out_dir.is_none();
    if let Some(dir) = &o.out_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut sink = if stdout_mode {
        let mut w: Box<dyn Write> =
            Box::new(BufWriter::with_capacity(1 << 20, io::stdout().lock()));
        w.write_all(&header)?;
        Some(Sink {
            w,
            file_rows: 0,
            file_lines: 1,
        })
    } else {
        None
    };
    let mut manifest = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    let (mut total_rows, mut total_bytes) =
        (0u64, if stdout_mode { header.len() as u64 } else { 0 });
    let started = Instant::now();
    let mut last_report = Instant::now();
    for t in 0..o.tenants {
        for a in 0..o.accounts {
            let k = t * o.accounts + a;
            let rows = match (o.rows, o.rows_per_account) {
                (_, Some(r)) => r,
                (r, None) => {
                    let r = r.unwrap_or(10_000);
                    r / n_accounts + u64::from(k < r % n_accounts)
                }
            };
            let mut acct = make_account(o.seed, t, a, o.accounts, rows, o.hours);
            let n_res = acct.resources.len();
            let mut written = 0u64;
            let mut batch = 0u64;
            let mut entry: Option<ManifestEntry> = None;
            let new_entry = |acct: &Account, file: String, first_line: u64| ManifestEntry {
                file,
                tenant: t,
                tenant_id: acct.tenant_id.clone(),
                account: a,
                cloud_account_id: acct.cloud_account_id.clone(),
                provider: acct.provider.name,
                billing_account_id: acct.billing_account_id.clone(),
                rows: 0,
                first_line,
                last_line: first_line.saturating_sub(1),
                bad_rows: 0,
            };
            'hours: for hour in &hours {
                for r in 0..n_res {
                    if written == acct.rows {
                        break 'hours;
                    }
                    // Open a file when needed (out-dir mode).
                    let need_new = match (&sink, o.batch_rows) {
                        (None, _) => true,
                        (Some(s), Some(b)) if !stdout_mode => s.file_rows >= b,
                        _ => false,
                    };
                    if need_new {
                        if let Some(mut s) = sink.take() {
                            s.w.write_all(&buf)?;
                            buf.clear();
                            s.w.flush()?;
                        }
                        if let Some(e) = entry.take() {
                            manifest.push(e);
                        }
                        let dir = o.out_dir.as_deref().unwrap_or(Path::new("."));
                        let name = match o.batch_rows {
                            Some(_) => format!("t{t:05}_a{a:03}_b{batch:04}.csv"),
                            None => format!("t{t:05}_a{a:03}.csv"),
                        };
                        batch += 1;
                        let mut w: Box<dyn Write> = Box::new(BufWriter::with_capacity(
                            1 << 20,
                            File::create(dir.join(&name))?,
                        ));
                        w.write_all(&header)?;
                        total_bytes += header.len() as u64;
                        sink = Some(Sink {
                            w,
                            file_rows: 0,
                            file_lines: 1,
                        });
                        entry = Some(new_entry(&acct, name, 2));
                    }
                    let Some(s) = sink.as_mut() else {
                        unreachable!("sink opened above")
                    };
                    if entry.is_none() {
                        entry = Some(new_entry(&acct, "-".into(), s.file_lines + 1));
                    }
                    let bad = if o.reject_every > 0 && (written + 1).is_multiple_of(o.reject_every)
                    {
                        match ((written + 1) / o.reject_every) % 5 {
                            0 => Bad::Number,
                            1 => Bad::Currency,
                            2 => Bad::EndBeforeStart,
                            3 => Bad::Category,
                            _ => Bad::Tags,
                        }
                    } else {
                        Bad::None
                    };
                    let v = row_vals(&mut acct, r, bad);
                    write_row(&mut buf, cols, &acct, &acct.resources[r], hour, &v);
                    written += 1;
                    s.file_rows += 1;
                    s.file_lines += 1;
                    if let Some(e) = entry.as_mut() {
                        e.rows += 1;
                        e.last_line = s.file_lines;
                        e.bad_rows += u64::from(bad != Bad::None);
                    }
                    if buf.len() >= 1 << 16 {
                        total_bytes += buf.len() as u64;
                        s.w.write_all(&buf)?;
                        buf.clear();
                    }
                }
            }
            if let Some(s) = sink.as_mut() {
                total_bytes += buf.len() as u64;
                s.w.write_all(&buf)?;
                buf.clear();
            }
            if !stdout_mode {
                if let Some(mut s) = sink.take() {
                    s.w.flush()?;
                }
            }
            if let Some(e) = entry.take() {
                manifest.push(e);
            }
            total_rows += written;
            if last_report.elapsed().as_secs() >= 5 {
                last_report = Instant::now();
                eprintln!(
                    "gen_focus: {total_rows} rows, account {}/{n_accounts}, {:.0} rows/s",
                    k + 1,
                    total_rows as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
    }
    if let Some(mut s) = sink.take() {
        s.w.flush()?;
    }
    if let Some(dir) = &o.out_dir {
        write_manifest(&dir.join("manifest.tsv"), &manifest)?;
    } else if let Some(path) = &o.manifest {
        write_manifest(path, &manifest)?;
    }
    Ok((total_rows, total_bytes))
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gen_focus: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let t = Instant::now();
    match run(&opts) {
        Ok((rows, bytes)) => {
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "gen_focus: {rows} rows, {:.1} MB in {secs:.2}s ({:.0} rows/s, {:.0} MB/s)",
                bytes as f64 / 1e6,
                rows as f64 / secs.max(1e-9),
                bytes as f64 / 1e6 / secs.max(1e-9)
            );
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("gen_focus: {e}");
            std::process::exit(1);
        }
    }
}
