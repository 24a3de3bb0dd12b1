//! ISO 4217 alphabetic currency codes.

/// Active ISO 4217 codes (list one of the ISO 4217 maintenance agency, as of
/// early 2026: includes fund codes, precious metals and the X-codes), sorted.
pub const ISO_4217_ACTIVE: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP",
    "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR",
    "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
    "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR",
    "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB",
    "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH",
    "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAD",
    "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF",
    "XPT", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG",
];

/// Codes withdrawn since 2023 that still appear in billing history
/// (HRK → EUR 2023, SLL → SLE, CUC, ZWL → ZWG 2024, ANG → XCG 2025,
/// BGN → EUR 2026). Accepted so older exports load; sorted.
pub const ISO_4217_RECENTLY_WITHDRAWN: &[&str] = &["ANG", "BGN", "CUC", "HRK", "SLL", "ZWL"];

/// The upper-case `&'static` code for `value` (trimmed, any case), if it is
/// an active or recently withdrawn ISO 4217 code.
pub fn canonical_currency(value: &str) -> Option<&'static str> {
    let b = value.as_bytes();
    if b.len() != 3 || !b.iter().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let k = key(b);
    // Integer comparisons: this runs for every row.
    if let Ok(i) = ACTIVE_KEYS.binary_search(&k) {
        return ISO_4217_ACTIVE.get(i).copied();
    }
    if let Ok(i) = WITHDRAWN_KEYS.binary_search(&k) {
        return ISO_4217_RECENTLY_WITHDRAWN.get(i).copied();
    }
    None
}

/// Upper-cased first three bytes as a big-endian integer (order-preserving).
const fn key(s: &[u8]) -> u32 {
    let mut k = 0u32;
    let mut i = 0;
    while i < 3 && i < s.len() {
        k = (k << 8) | s[i].to_ascii_uppercase() as u32;
        i += 1;
    }
    k
}

const fn keys<const N: usize>(list: &[&str]) -> [u32; N] {
    let mut out = [0u32; N];
    let mut i = 0;
    while i < N {
        out[i] = key(list[i].as_bytes());
        i += 1;
    }
    out
}

const ACTIVE_KEYS: [u32; ISO_4217_ACTIVE.len()] = keys(ISO_4217_ACTIVE);
const WITHDRAWN_KEYS: [u32; ISO_4217_RECENTLY_WITHDRAWN.len()] = keys(ISO_4217_RECENTLY_WITHDRAWN);
