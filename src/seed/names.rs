//! Word lists of the population. Names deliberately include non-ASCII letters, so that the
//! seeded directory exercises case folding beyond ASCII.

/// (display form, ASCII form for logins and addresses)
pub const GIVEN_NAMES: &[(&str, &str)] = &[
    ("Ada", "ada"),
    ("Émile", "emile"),
    ("Zoë", "zoe"),
    ("Łukasz", "lukasz"),
    ("Chloé", "chloe"),
    ("Björn", "bjorn"),
    ("Maria", "maria"),
    ("José", "jose"),
    ("Aiko", "aiko"),
    ("Noah", "noah"),
    ("Olivia", "olivia"),
    ("Søren", "soren"),
    ("Ingrid", "ingrid"),
    ("Mateo", "mateo"),
    ("Fatima", "fatima"),
    ("Yusuf", "yusuf"),
    ("Grace", "grace"),
    ("Linus", "linus"),
    ("Amélie", "amelie"),
    ("Dmitri", "dmitri"),
    ("Priya", "priya"),
    ("Kwame", "kwame"),
    ("Hana", "hana"),
    ("Ólafur", "olafur"),
    ("Gigi", "gigi"),
    ("Leon", "leon"),
];

pub const FAMILY_NAMES: &[(&str, &str)] = &[
    ("Lovelace", "lovelace"),
    ("Dupont", "dupont"),
    ("Müller", "muller"),
    ("Kowalski", "kowalski"),
    ("Nørgaard", "norgaard"),
    ("García", "garcia"),
    ("Tanaka", "tanaka"),
    ("Smith", "smith"),
    ("O'Brien", "obrien"),
    ("Rossi", "rossi"),
    ("Öztürk", "ozturk"),
    ("Nakamura", "nakamura"),
    ("Giraffe", "giraffe"),
    ("Hopper", "hopper"),
    ("Ivanova", "ivanova"),
    ("Mensah", "mensah"),
    ("Søndergaard", "sondergaard"),
    ("Torvalds", "torvalds"),
    ("Brontë", "bronte"),
    ("Kim", "kim"),
];

pub const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Finance",
    "Support",
    "Legal",
    "Research",
];

pub const LOCALES: &[&str] = &["en-US", "de-CH", "fr-FR", "ja-JP", "da-DK", "es-ES"];

pub const SERVICES: &[&str] = &[
    "billing-sync",
    "ci-runner",
    "backup",
    "crm-export",
    "audit-reader",
];

pub const WEBAUTHN_NAMES: &[&str] = &[
    "YubiKey 5C",
    "MacBook Touch ID",
    "Pixel passkey",
    "Windows Hello",
];

/// (idp id, idp name)
pub const IDPS: &[(&str, &str)] = &[
    ("google", "Google"),
    ("github", "GitHub"),
    ("okta", "Okta Workforce"),
];
