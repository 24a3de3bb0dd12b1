//! The raw cost table's columns (single source of truth), their value kinds,
//! the FOCUS enumerations and the header-name aliases of FOCUS 0.5 … 1.3.

/// How a column's values are checked, normalized and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free text, stored verbatim (SQL `text`).
    Text,
    /// Decimal number, stored with the source text's full precision
    /// (SQL `numeric`). Plain or scientific notation; NaN/Infinity refused.
    Decimal,
    /// Instant, normalized to UTC text `YYYY-MM-DD HH:MM:SS[.ffffff]+00`
    /// (SQL `timestamptz`).
    Timestamp,
    /// JSON object, re-emitted compactly; `{}` is stored as NULL (SQL `jsonb`).
    Json,
    /// ISO 4217 alphabetic code, upper-cased (SQL `text`).
    Currency,
    /// Closed FOCUS enumeration, normalized to its canonical spelling (SQL `text`).
    Enum(&'static EnumSpec),
}

impl ColumnKind {
    /// The PostgreSQL type the raw table should use for this kind.
    pub const fn sql_type(self) -> &'static str {
        match self {
            ColumnKind::Text | ColumnKind::Currency | ColumnKind::Enum(_) => "text",
            ColumnKind::Decimal => "numeric",
            ColumnKind::Timestamp => "timestamptz",
            ColumnKind::Json => "jsonb",
        }
    }
}

/// A closed FOCUS enumeration.
#[derive(Debug, PartialEq, Eq)]
pub struct EnumSpec {
    /// FOCUS column id, for messages.
    pub focus_name: &'static str,
    /// Canonical spellings.
    pub values: &'static [&'static str],
    /// Older spellings (FOCUS 1.0-preview) mapped to a canonical value.
    /// Matching ignores case and every non-alphanumeric character.
    pub aliases: &'static [(&'static str, &'static str)],
}

pub const CHARGE_CATEGORY: EnumSpec = EnumSpec {
    focus_name: "ChargeCategory",
    values: &["Usage", "Purchase", "Tax", "Credit", "Adjustment"],
    aliases: &[],
};
pub const CHARGE_CLASS: EnumSpec = EnumSpec {
    focus_name: "ChargeClass",
    values: &["Correction"],
    aliases: &[],
};
pub const CHARGE_FREQUENCY: EnumSpec = EnumSpec {
    focus_name: "ChargeFrequency",
    values: &["One-Time", "Recurring", "Usage-Based"],
    aliases: &[],
};
pub const PRICING_CATEGORY: EnumSpec = EnumSpec {
    focus_name: "PricingCategory",
    values: &["Standard", "Dynamic", "Committed", "Other"],
    // FOCUS 1.0-preview spellings.
    aliases: &[("On-Demand", "Standard"), ("Commitment-Based", "Committed")],
};
pub const COMMITMENT_DISCOUNT_STATUS: EnumSpec = EnumSpec {
    focus_name: "CommitmentDiscountStatus",
    values: &["Used", "Unused"],
    aliases: &[],
};
pub const COMMITMENT_DISCOUNT_CATEGORY: EnumSpec = EnumSpec {
    focus_name: "CommitmentDiscountCategory",
    values: &["Spend", "Usage"],
    aliases: &[],
};
pub const CAPACITY_RESERVATION_STATUS: EnumSpec = EnumSpec {
    focus_name: "CapacityReservationStatus",
    values: &["Used", "Unused"],
    aliases: &[],
};
pub const SERVICE_CATEGORY: EnumSpec = EnumSpec {
    focus_name: "ServiceCategory",
    values: &[
        "AI and Machine Learning",
        "Analytics",
        "Business Applications",
        "Compute",
        "Databases",
        "Developer Tools",
        "Multicloud",
        "Identity",
        "Integration",
        "Internet of Things",
        "Management and Governance",
        "Media",
        "Migration",
        "Mobile",
        "Networking",
        "Security",
        "Storage",
        "Web",
        "Other",
    ],
    aliases: &[],
};

/// One column of `d5.cost_metrics_raw` that comes from a FOCUS file.
#[derive(Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    /// snake_case SQL column name.
    pub name: &'static str,
    /// FOCUS 1.2 column id (PascalCase) — what the generator writes.
    pub focus_name: &'static str,
    pub kind: ColumnKind,
    /// A header lacking this column is refused; a row with it empty is rejected.
    pub mandatory: bool,
}

macro_rules! raw_columns {
    ($( $variant:ident => $name:literal, $focus:literal, $kind:expr, $mandatory:literal; )*) => {
        /// Index of a raw column; `Col::X as usize` indexes [`RAW_COLUMNS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Col { $( $variant, )* }

        /// The raw table's FOCUS-derived columns, in table (and COPY) order.
        pub const RAW_COLUMNS: &[ColumnSpec] = &[
            $( ColumnSpec { name: $name, focus_name: $focus, kind: $kind, mandatory: $mandatory }, )*
        ];

        impl Col {
            /// Every column, in table order.
            pub const ALL: &'static [Col] = &[ $( Col::$variant, )* ];
        }
    };
}

use ColumnKind::{Currency, Decimal, Enum, Json, Text, Timestamp};

raw_columns! {
    AvailabilityZone => "availability_zone", "AvailabilityZone", Text, false;
    BilledCost => "billed_cost", "BilledCost", Decimal, true;
    BillingAccountId => "billing_account_id", "BillingAccountId", Text, true;
    BillingAccountName => "billing_account_name", "BillingAccountName", Text, false;
    BillingAccountType => "billing_account_type", "BillingAccountType", Text, false;
    BillingCurrency => "billing_currency", "BillingCurrency", Currency, true;
    BillingPeriodEnd => "billing_period_end", "BillingPeriodEnd", Timestamp, true;
    BillingPeriodStart => "billing_period_start", "BillingPeriodStart", Timestamp, true;
    CapacityReservationId => "capacity_reservation_id", "CapacityReservationId", Text, false;
    CapacityReservationStatus => "capacity_reservation_status", "CapacityReservationStatus", Enum(&CAPACITY_RESERVATION_STATUS), false;
    ChargeCategory => "charge_category", "ChargeCategory", Enum(&CHARGE_CATEGORY), true;
    ChargeClass => "charge_class", "ChargeClass", Enum(&CHARGE_CLASS), false;
    ChargeDescription => "charge_description", "ChargeDescription", Text, false;
    ChargeFrequency => "charge_frequency", "ChargeFrequency", Enum(&CHARGE_FREQUENCY), false;
    ChargePeriodEnd => "charge_period_end", "ChargePeriodEnd", Timestamp, true;
    ChargePeriodStart => "charge_period_start", "ChargePeriodStart", Timestamp, true;
    CommitmentDiscountCategory => "commitment_discount_category", "CommitmentDiscountCategory", Enum(&COMMITMENT_DISCOUNT_CATEGORY), false;
    CommitmentDiscountId => "commitment_discount_id", "CommitmentDiscountId", Text, false;
    CommitmentDiscountName => "commitment_discount_name", "CommitmentDiscountName", Text, false;
    CommitmentDiscountQuantity => "commitment_discount_quantity", "CommitmentDiscountQuantity", Decimal, false;
    CommitmentDiscountStatus => "commitment_discount_status", "CommitmentDiscountStatus", Enum(&COMMITMENT_DISCOUNT_STATUS), false;
    CommitmentDiscountType => "commitment_discount_type", "CommitmentDiscountType", Text, false;
    CommitmentDiscountUnit => "commitment_discount_unit", "CommitmentDiscountUnit", Text, false;
    ConsumedQuantity => "consumed_quantity", "ConsumedQuantity", Decimal, false;
    ConsumedUnit => "consumed_unit", "ConsumedUnit", Text, false;
    ContractedCost => "contracted_cost", "ContractedCost", Decimal, true;
    ContractedUnitPrice => "contracted_unit_price", "ContractedUnitPrice", Decimal, false;
    EffectiveCost => "effective_cost", "EffectiveCost", Decimal, true;
    HostProviderName => "host_provider_name", "HostProviderName", Text, false;
    InvoiceId => "invoice_id", "InvoiceId", Text, false;
    InvoiceIssuerName => "invoice_issuer_name", "InvoiceIssuerName", Text, false;
    ListCost => "list_cost", "ListCost", Decimal, true;
    ListUnitPrice => "list_unit_price", "ListUnitPrice", Decimal, false;
    PricingCategory => "pricing_category", "PricingCategory", Enum(&PRICING_CATEGORY), false;
    PricingCurrency => "pricing_currency", "PricingCurrency", Currency, false;
    PricingCurrencyContractedUnitPrice => "pricing_currency_contracted_unit_price", "PricingCurrencyContractedUnitPrice", Decimal, false;
    PricingCurrencyEffectiveCost => "pricing_currency_effective_cost", "PricingCurrencyEffectiveCost", Decimal, false;
    PricingCurrencyListUnitPrice => "pricing_currency_list_unit_price", "PricingCurrencyListUnitPrice", Decimal, false;
    PricingQuantity => "pricing_quantity", "PricingQuantity", Decimal, false;
    PricingUnit => "pricing_unit", "PricingUnit", Text, false;
    ProviderName => "provider_name", "ProviderName", Text, true;
    PublisherName => "publisher_name", "PublisherName", Text, false;
    RegionId => "region_id", "RegionId", Text, false;
    RegionName => "region_name", "RegionName", Text, false;
    ResourceId => "resource_id", "ResourceId", Text, false;
    ResourceName => "resource_name", "ResourceName", Text, false;
    ResourceType => "resource_type", "ResourceType", Text, false;
    ServiceCategory => "service_category", "ServiceCategory", Enum(&SERVICE_CATEGORY), false;
    ServiceName => "service_name", "ServiceName", Text, true;
    ServiceSubcategory => "service_subcategory", "ServiceSubcategory", Text, false;
    SkuId => "sku_id", "SkuId", Text, false;
    SkuMeter => "sku_meter", "SkuMeter", Text, false;
    SkuPriceDetails => "sku_price_details", "SkuPriceDetails", Json, false;
    SkuPriceId => "sku_price_id", "SkuPriceId", Text, false;
    SubAccountId => "sub_account_id", "SubAccountId", Text, false;
    SubAccountName => "sub_account_name", "SubAccountName", Text, false;
    SubAccountType => "sub_account_type", "SubAccountType", Text, false;
    Tags => "tags", "Tags", Json, false;
}

/// Number of raw columns.
pub const RAW_COLUMN_COUNT: usize = RAW_COLUMNS.len();

impl Col {
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
    #[inline]
    pub const fn spec(self) -> &'static ColumnSpec {
        &RAW_COLUMNS[self as usize]
    }
    #[inline]
    pub const fn name(self) -> &'static str {
        self.spec().name
    }
    /// The column with this snake_case name.
    pub fn from_name(name: &str) -> Option<Col> {
        Col::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// `"availability_zone, billed_cost, …"` — the column list for
/// `COPY d5.cost_metrics_raw (<extra columns>, <this>) FROM STDIN`.
pub fn copy_column_list() -> String {
    let names: Vec<&str> = RAW_COLUMNS.iter().map(|c| c.name).collect();
    names.join(", ")
}

/// DDL fragment for the FOCUS-derived columns, one per line, e.g.
/// `billed_cost numeric NOT NULL,` — mandatory columns are NOT NULL since
/// rows lacking them are rejected.
pub fn raw_columns_ddl() -> String {
    let mut s = String::new();
    for (i, c) in RAW_COLUMNS.iter().enumerate() {
        s.push_str("    ");
        s.push_str(c.name);
        s.push(' ');
        s.push_str(c.kind.sql_type());
        if c.mandatory {
            s.push_str(" NOT NULL");
        }
        if i + 1 < RAW_COLUMNS.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s
}

/// A header name accepted for a raw column besides its FOCUS 1.2 id and its
/// snake_case name (both always accepted).
#[derive(Debug)]
pub struct HeaderAlias {
    /// The spelling (matching ignores case and non-alphanumerics).
    pub header: &'static str,
    pub column: Col,
    /// When two header columns map to the same raw column, the higher priority
    /// wins and the other is ignored; equal priorities are a header error.
    /// FOCUS 1.2 ids and snake_case names have priority [`PRIORITY_CURRENT`].
    pub priority: u8,
    /// Where the spelling comes from.
    pub origin: &'static str,
}

/// Priority of the FOCUS 1.2 id / snake_case name of each column.
pub const PRIORITY_CURRENT: u8 = 2;

/// Renames between FOCUS versions (and display names).
pub const HEADER_ALIASES: &[HeaderAlias] = &[
    // FOCUS 1.3 renamed ProviderName → ServiceProviderName (ProviderName is
    // deprecated but still present in 1.3 files); the new name wins.
    HeaderAlias {
        header: "ServiceProviderName",
        column: Col::ProviderName,
        priority: 3,
        origin: "FOCUS 1.3 (supersedes ProviderName)",
    },
    HeaderAlias {
        header: "ServiceProvider",
        column: Col::ProviderName,
        priority: 1,
        origin: "FOCUS 1.3 working-draft id",
    },
    HeaderAlias {
        header: "Provider",
        column: Col::ProviderName,
        priority: 1,
        origin: "display name (FOCUS 0.5–1.2)",
    },
    HeaderAlias {
        header: "Publisher",
        column: Col::PublisherName,
        priority: 1,
        origin: "display name (FOCUS 0.5–1.2)",
    },
    HeaderAlias {
        header: "HostProvider",
        column: Col::HostProviderName,
        priority: 1,
        origin: "FOCUS 1.3 working-draft id",
    },
    HeaderAlias {
        header: "InvoiceIssuer",
        column: Col::InvoiceIssuerName,
        priority: 1,
        origin: "display name (FOCUS 0.5–1.2)",
    },
    HeaderAlias {
        header: "AmortizedCost",
        column: Col::EffectiveCost,
        priority: 1,
        origin: "FOCUS 0.5 (renamed EffectiveCost in 1.0-preview)",
    },
    HeaderAlias {
        header: "ChargeType",
        column: Col::ChargeCategory,
        priority: 1,
        origin: "FOCUS 0.5 (renamed ChargeCategory in 1.0-preview)",
    },
    HeaderAlias {
        header: "Region",
        column: Col::RegionId,
        priority: 1,
        origin: "FOCUS 0.5/1.0-preview (split into RegionId/RegionName in 1.0)",
    },
    HeaderAlias {
        header: "UsageQuantity",
        column: Col::ConsumedQuantity,
        priority: 1,
        origin: "FOCUS 1.0-preview (renamed ConsumedQuantity in 1.0)",
    },
    HeaderAlias {
        header: "UsageUnit",
        column: Col::ConsumedUnit,
        priority: 1,
        origin: "FOCUS 1.0-preview (renamed ConsumedUnit in 1.0)",
    },
];

/// Header-name matching key: ASCII letters and digits only, lower-cased
/// (`BilledCost`, `billed_cost`, `Billed Cost` → `billedcost`).
pub(crate) fn header_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Case- and punctuation-insensitive comparison used for enumerations:
/// compares only ASCII alphanumerics, lower-cased; non-ASCII characters
/// must match exactly.
pub(crate) fn loose_eq(a: &str, b: &str) -> bool {
    let mut x = a
        .chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_ascii_lowercase());
    let mut y = b
        .chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| c.to_ascii_lowercase());
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

impl EnumSpec {
    /// The canonical spelling of `value` (already trimmed), if allowed.
    pub fn canonical(&self, value: &str) -> Option<&'static str> {
        let first = value.as_bytes().first();
        if let Some(v) = self
            .values
            .iter()
            .find(|v| v.len() == value.len() && v.as_bytes().first() == first && **v == value)
        {
            return Some(v);
        }
        if value.len() > 64 {
            return None;
        }
        if let Some(v) = self.values.iter().find(|v| loose_eq(v, value)) {
            return Some(v);
        }
        self.aliases
            .iter()
            .find(|(alias, _)| loose_eq(alias, value))
            .map(|(_, v)| *v)
    }

    /// `"Usage, Purchase, Tax, Credit, Adjustment"`.
    pub fn allowed_list(&self) -> String {
        self.values.join(", ")
    }
}
