"""Word lists and code tables the synthetic practice draws from (all invented or public codes)."""

from __future__ import annotations

from dataclasses import dataclass

FIRST_NAMES_MALE: tuple[str, ...] = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul",
    "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Jason",
    "Edward", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen",
    "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel", "Gregory", "Alexander", "Tyler",
    "Porter", "Brigham", "Hyrum", "Easton", "Maverick", "Liam", "Noah", "Oliver", "Elijah", "Lucas",
)
FIRST_NAMES_FEMALE: tuple[str, ...] = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly", "Emily", "Donna",
    "Michelle", "Carol", "Amanda", "Dorothy", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon",
    "Laura", "Cynthia", "Kathleen", "Amy", "Angela", "Shirley", "Anna", "Brenda", "Pamela", "Emma",
    "Nicole", "Helen", "Samantha", "Katherine", "Christine", "Debra", "Rachel", "Olivia", "Ava",
    "Sophia", "Isabella", "Mia", "Charlotte", "Harper", "Kaylee", "McKenna", "Oaklee",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Christensen", "Jensen", "Larsen", "Hansen", "Petersen",
    "Olsen", "Nielsen", "Sorensen", "Call", "Bingham", "Pratt", "Kimball", "Snow",
    "Richards", "Cannon", "Eyring", "Oaks", "Monson", "Hinckley", "Woolley", "Tanner", "Peterson",
    "Bennett", "Wood", "Barnes", "Ross", "Henderson", "Coleman", "Jenkins", "Perry", "Powell",
    "Long", "Patterson", "Hughes", "Washington", "Butler", "Simmons", "Foster", "Bryant",
    "Alexander", "Russell", "Griffin", "Diaz", "Hayes", "Myers", "Ford", "Hamilton", "Graham",
    "Sullivan", "Wallace", "Woods", "Cole", "West", "Jordan", "Owens", "Reynolds", "Fisher",
)
# Names that break naive ASCII handling: accents, CJK, apostrophes, hyphens.
UNICODE_FIRST_NAMES: tuple[str, ...] = (
    "José", "Zoë", "Renée", "André", "Chloé", "Björn", "Søren", "Ángel", "Inés", "François",
    "Łukasz", "Małgorzata", "Nguyễn Thị", "Thảo", "伟", "小龙", "さくら", "Jae-won", "Mary-Kate", "D'Andre",
)
UNICODE_LAST_NAMES: tuple[str, ...] = (
    "O'Brien", "D'Angelo", "O'Neil", "Smith-Jones", "García-López", "Müller", "Nuñez", "Peña",
    "Bjørnsen", "Ñandú", "Nguyễn", "Trần", "王", "李", "陈", "Kowalczyk-Wójcik", "St. John",
    "van der Berg", "De La Cruz", "Ó Súilleabháin",
)
NICKNAMES: dict[str, str] = {
    "Robert": "Bob", "William": "Bill", "Elizabeth": "Liz", "Katherine": "Kate", "Michael": "Mike",
    "Jennifer": "Jen", "James": "Jim", "Richard": "Rick", "Margaret": "Peggy", "Thomas": "Tom",
    "Christopher": "Chris", "Joseph": "Joe", "Daniel": "Dan", "Susan": "Sue", "Patricia": "Pat",
    "Matthew": "Matt", "Anthony": "Tony", "Jessica": "Jess", "Samantha": "Sam", "Rebecca": "Becky",
    "Kimberly": "Kim", "Deborah": "Debbie", "Benjamin": "Ben", "Nicholas": "Nick", "Andrew": "Andy",
}

STREET_NAMES: tuple[str, ...] = (
    "Main", "State", "Center", "Canyon", "Timpanogos", "Alpine", "Cedar", "Aspen", "Maple", "Oak",
    "Willow", "Cottonwood", "Sage", "Juniper", "Pioneer", "Mill", "Orchard", "Ridge", "Lakeview",
    "Sunset", "Harvest", "Quail", "Heritage", "Eagle", "Bridal Veil", "Cascade", "Grandview",
)
STREET_SUFFIXES: tuple[str, ...] = ("St", "Ave", "Dr", "Ln", "Way", "Cir", "Ct", "Rd", "Blvd", "Pl")
# Utah-style grid addresses ("1450 N 300 E") are common in Dentrix's home state.
GRID_DIRECTIONS: tuple[str, ...] = ("N", "S", "E", "W")


@dataclass(frozen=True)
class City:
    name: str
    state: str
    zipcode: str
    area_code: str


CITIES: tuple[City, ...] = (
    City("American Fork", "UT", "84003", "801"),
    City("Lehi", "UT", "84043", "385"),
    City("Orem", "UT", "84057", "801"),
    City("Provo", "UT", "84604", "801"),
    City("Pleasant Grove", "UT", "84062", "801"),
    City("Lindon", "UT", "84042", "801"),
    City("Highland", "UT", "84003", "801"),
    City("Saratoga Springs", "UT", "84045", "385"),
    City("Eagle Mountain", "UT", "84005", "385"),
    City("Sandy", "UT", "84070", "801"),
    City("Draper", "UT", "84020", "801"),
    City("Salt Lake City", "UT", "84101", "801"),
    City("Ogden", "UT", "84401", "801"),
    City("Spanish Fork", "UT", "84660", "801"),
    City("Park City", "UT", "84060", "435"),
    City("St. George", "UT", "84770", "435"),
    City("Boise", "ID", "83702", "208"),
    City("Las Vegas", "NV", "89101", "702"),
)

EMPLOYER_NAMES: tuple[str, ...] = (
    "Alpine School District", "Wasatch Software Inc", "Timp Regional Medical", "Silicon Slopes Labs",
    "Canyon Construction LLC", "Utah Valley Credit Union", "Beehive Logistics", "Summit Outdoor Co",
    "Provo City Corp", "Mountain West Foods", "Lakeside Manufacturing", "Granite Peak Insurance",
    "Orchard Family Farms", "Red Rock Energy", "Great Basin Analytics", "Cottonwood Retail Group",
    "Pioneer Print & Mail", "Aspen Home Health", "Sage Financial Partners", "Bridal Veil Hotels",
    "High Desert Trucking", "Juniper Pharmacy", "Quail Run Golf Club", "Heritage Academy",
    "Cascade Dental Lab", "Grandview Church Services", "Eagle Aviation", "State of Utah",
    "Intermountain Parcel", "Sunset Auto Group",
)


@dataclass(frozen=True)
class Carrier:
    name: str
    payer_id: str
    phone: str
    plan_type: str  # words only, for group names


CARRIERS: tuple[Carrier, ...] = (
    Carrier("Delta Dental of Utah", "94276", "800-453-4500", "PPO"),
    Carrier("MetLife Dental", "65978", "800-942-0854", "PDP"),
    Carrier("Cigna Dental", "62308", "800-244-6224", "DPPO"),
    Carrier("Aetna Dental", "60054", "877-238-6200", "PPO"),
    Carrier("Guardian Dental", "64246", "800-541-7846", "DentalGuard"),
    Carrier("United Concordia", "CX007", "800-332-0366", "PPO"),
    Carrier("Humana Dental", "73288", "800-233-4013", "PPO"),
    Carrier("Regence BlueCross Dental", "00934", "888-367-2116", "Dental"),
    Carrier("Principal Financial", "61271", "800-247-4695", "PPO"),
    Carrier("Ameritas", "47009", "800-487-5553", "Classic"),
    Carrier("SelectHealth Dental", "SX107", "800-538-5038", "Dental"),
    Carrier("PEHP Dental", "PEHP1", "801-366-7555", "Preferred"),
    Carrier("DentaQuest Medicaid", "CX014", "888-291-3762", "Medicaid"),
    Carrier("Sun Life Dental", "80314", "800-442-7742", "PPO"),
)


@dataclass(frozen=True)
class ProcedureCode:
    ada: str
    abbrev: str
    descript: str
    fee: float
    category: int  # 1 diagnostic, 2 preventive, 3 restorative, 4 endo, 5 perio, 6 prosth, 7 surgery, 9 adjunct
    area: int  # TreatmentArea
    coverage: str  # "prev" / "basic" / "major"


PROCEDURE_CODES: tuple[ProcedureCode, ...] = (
    ProcedureCode("D0120", "PerEval", "periodic oral evaluation - established patient", 62.0, 1, 1, "prev"),
    ProcedureCode("D0140", "LimEval", "limited oral evaluation - problem focused", 85.0, 1, 1, "prev"),
    ProcedureCode("D0150", "CompEval", "comprehensive oral evaluation - new or established patient", 110.0, 1, 1, "prev"),
    ProcedureCode("D0180", "PerioEval", "comprehensive periodontal evaluation", 120.0, 1, 1, "prev"),
    ProcedureCode("D0210", "FMX", "intraoral - complete series of radiographic images", 150.0, 1, 1, "prev"),
    ProcedureCode("D0220", "PA", "intraoral - periapical first radiographic image", 32.0, 1, 2, "prev"),
    ProcedureCode("D0274", "4BWX", "bitewings - four radiographic images", 72.0, 1, 1, "prev"),
    ProcedureCode("D0330", "Pano", "panoramic radiographic image", 125.0, 1, 1, "prev"),
    ProcedureCode("D1110", "Pro-Adlt", "prophylaxis - adult", 105.0, 2, 1, "prev"),
    ProcedureCode("D1120", "Pro-Chld", "prophylaxis - child", 75.0, 2, 1, "prev"),
    ProcedureCode("D1206", "FlVarn", "topical application of fluoride varnish", 40.0, 2, 1, "prev"),
    ProcedureCode("D1351", "Sealant", "sealant - per tooth", 55.0, 2, 2, "prev"),
    ProcedureCode("D2140", "Amal1", "amalgam - one surface, primary or permanent", 140.0, 3, 3, "basic"),
    ProcedureCode("D2150", "Amal2", "amalgam - two surfaces, primary or permanent", 175.0, 3, 3, "basic"),
    ProcedureCode("D2330", "Comp1A", "resin-based composite - one surface, anterior", 155.0, 3, 3, "basic"),
    ProcedureCode("D2391", "Comp1P", "resin-based composite - one surface, posterior", 175.0, 3, 3, "basic"),
    ProcedureCode("D2392", "Comp2P", "resin-based composite - two surfaces, posterior", 220.0, 3, 3, "basic"),
    ProcedureCode("D2393", "Comp3P", "resin-based composite - three surfaces, posterior", 265.0, 3, 3, "basic"),
    ProcedureCode("D2740", "CrnPorc", "crown - porcelain/ceramic", 1250.0, 6, 2, "major"),
    ProcedureCode("D2750", "CrnPFM", "crown - porcelain fused to high noble metal", 1150.0, 6, 2, "major"),
    ProcedureCode("D2950", "CoreBU", "core buildup, including any pins when required", 300.0, 3, 2, "major"),
    ProcedureCode("D3310", "RCTAnt", "endodontic therapy, anterior tooth", 900.0, 4, 2, "basic"),
    ProcedureCode("D3330", "RCTMol", "endodontic therapy, molar tooth", 1250.0, 4, 2, "basic"),
    ProcedureCode("D4341", "SRP4+", "periodontal scaling and root planing - four or more teeth per quadrant", 260.0, 5, 4, "basic"),
    ProcedureCode("D4342", "SRP1-3", "periodontal scaling and root planing - one to three teeth per quadrant", 180.0, 5, 4, "basic"),
    ProcedureCode("D4910", "PerioMnt", "periodontal maintenance", 150.0, 5, 1, "basic"),
    ProcedureCode("D5110", "DentCU", "complete denture - maxillary", 1800.0, 6, 1, "major"),
    ProcedureCode("D6010", "Implant", "surgical placement of implant body: endosteal implant", 2200.0, 6, 2, "major"),
    ProcedureCode("D7140", "Ext", "extraction, erupted tooth or exposed root", 195.0, 7, 2, "basic"),
    ProcedureCode("D7210", "SurgExt", "extraction, erupted tooth requiring removal of bone", 350.0, 7, 2, "basic"),
    ProcedureCode("D9110", "Palliat", "palliative treatment of dental pain - per visit", 120.0, 9, 1, "basic"),
    ProcedureCode("D9944", "NightGd", "occlusal guard - hard appliance, full arch", 550.0, 9, 1, "major"),
)

# Restorative and surgical visits draw from these (ada codes), weighted by frequency.
RESTORATIVE_CODES: tuple[tuple[str, int], ...] = (
    ("D2391", 30), ("D2392", 25), ("D2393", 10), ("D2330", 8), ("D2140", 4), ("D2150", 4),
    ("D2740", 8), ("D2750", 3), ("D2950", 5), ("D3330", 3), ("D3310", 2), ("D7140", 5),
    ("D7210", 2), ("D4341", 4), ("D4342", 3), ("D9944", 2), ("D6010", 1), ("D5110", 1),
)
SURFACES = "MODBLIF"

# (name, descript, interval months, provider type 0 hygienist / 1 dentist)
RECALL_TYPES: tuple[tuple[str, str, int, int], ...] = (
    ("PROPHY", "Prophy - 6 Month Cleaning", 6, 0),
    ("BWX", "Bitewing X-rays", 12, 0),
    ("FMX", "Full Mouth X-rays", 36, 0),
    ("PERIO", "Perio Maintenance", 3, 0),
    ("EXAM", "Periodic Exam", 6, 1),
)

APPOINTMENT_STATUSES: tuple[str, ...] = (
    "??????", "FIRM", "FIRM-E", "EMERGENCY", "HERE", "READY", "LMM", "LMP", "MULTI", "NOFLEX",
)
APPOINTMENT_TYPES: tuple[str, ...] = (
    "General", "High Production", "Medium Production", "Low Production", "New Patient",
    "Hygiene Recare", "Perio Maintenance", "Emergency", "Crown Seat", "Consult",
)
BILLING_TYPES: tuple[str, ...] = (
    "Standard Billing - finance charges", "Standard Billing - no finance charges",
    "Insurance Only - no statements", "Send to Collections", "Bad Debt - do not schedule",
)
PAYMENT_TYPES: tuple[str, ...] = (
    "Cash Payment", "Check Payment", "Credit Card Payment", "Dental Insurance Check Payment",
    "CareCredit Payment", "Online Payment",
)
ADJUSTMENT_TYPES: tuple[str, ...] = (
    "Insurance Write-Off (PPO)", "Professional Courtesy", "Senior Discount", "Initial Balance (+)",
    "Initial Balance (-)", "Bad Debt Write-Off", "Refund",
)
MEDICAL_ALERTS: tuple[str, ...] = (
    "Penicillin allergy", "Latex allergy", "Heart murmur", "Diabetes", "Pregnant",
    "Premedication required", "Blood thinners",
)
SPECIALTIES: tuple[str, ...] = (
    "General Dentist", "Hygienist", "Orthodontist", "Periodontist", "Endodontist", "Oral Surgeon",
)
DOCUMENT_TYPES: tuple[str, ...] = (
    "Consent Form", "Insurance Card", "Medical History Form", "Referral Letter", "EOB", "Lab Slip",
)

# Referral sources ("Drive by" and "Church friend" have no Zoho Lead_Source counterpart).
REFERRAL_SOURCES: tuple[str, ...] = (
    "Yelp", "Google", "Patient referral", "Insurance directory", "Walk-in", "Mailer", "Facebook",
    "Website", "Drive by", "Church friend",
)
REFERRED_TO_DOCTORS: tuple[tuple[str, str, int], ...] = (
    ("Hatch", "Brent", 3), ("Sorensen", "Kira", 4), ("Ashby", "Todd", 5), ("Merrill", "Dana", 6),
)


@dataclass(frozen=True)
class Drug:
    name: str
    descript: str
    dispense: str
    sig: str
    refills: int


DRUGS: tuple[Drug, ...] = (
    Drug("Amoxicillin", "500 mg capsule", "21 capsules", "Take 1 capsule by mouth three times daily for 7 days", 0),
    Drug("Amoxicillin", "500 mg capsule (premed)", "4 capsules", "Take 4 capsules by mouth 1 hour before dental appointment", 1),
    Drug("Clindamycin", "300 mg capsule", "28 capsules", "Take 1 capsule by mouth four times daily for 7 days", 0),
    Drug("Ibuprofen", "800 mg tablet", "20 tablets", "Take 1 tablet by mouth every 8 hours as needed for pain", 0),
    Drug("Hydrocodone/APAP", "5/325 mg tablet", "12 tablets", "Take 1 tablet by mouth every 6 hours as needed for severe pain", 0),
    Drug("Chlorhexidine Gluconate", "0.12% oral rinse", "473 mL", "Rinse with 15 mL for 30 seconds twice daily, do not swallow", 1),
    Drug("Prevident 5000 Plus", "1.1% sodium fluoride cream", "1 tube", "Brush teeth with a thin ribbon once daily at bedtime", 3),
    Drug("Triazolam", "0.25 mg tablet", "1 tablet", "Take 1 tablet by mouth 1 hour before appointment", 0),
)

# Office Journal titles by topic, each with how the office reached the patient.
CONTACT_TITLES: dict[str, tuple[tuple[str, str], ...]] = {
    "reminder": (
        ("Appt reminder text sent", "text"), ("Appt confirmed via text", "text"),
        ("Appt reminder call - confirmed", "call"), ("Left message re: appt", "call"),
    ),
    "recall": (
        ("Recall card mailed", "letter"), ("Left message re: recall", "call"), ("Recall text sent", "text"),
        ("Recall e-mail sent", "email"),
    ),
    "billing": (("Called re: balance", "call"), ("Statement mailed", "letter"), ("Payment plan discussed", "call")),
    "insurance": (("Called ins re: claim status", "call"), ("Faxed narrative to ins", "letter"), ("Ins verification call", "call")),
}

# Clinical note fragments by visit kind; no names or identifiers in any fragment.
NOTE_OPENERS: dict[str, tuple[str, ...]] = {
    "hygiene": (
        "Pt presented for periodic exam and prophy.", "Recare visit: exam, prophy, BWX per schedule.",
        "Pt here for 6 month cleaning.",
    ),
    "perio": ("Perio maintenance visit.", "SRP appointment, local anesthetic administered."),
    "restorative": ("Restorative appointment per tx plan.", "Pt presented for scheduled restorations."),
    "emergency": ("Emergency visit: pt reports pain.", "Limited exam for broken tooth.", "Pt called with swelling, seen same day."),
    "new_patient": ("New patient comprehensive exam.", "NP exam, FMX taken, full charting completed."),
}
NOTE_BODIES: tuple[str, ...] = (
    "Med hx reviewed, no changes.", "Med hx reviewed, pt now taking lisinopril.", "BP 122/78.",
    "BP 138/88, advised pt to follow up with physician.", "Light plaque, localized gingival inflammation.",
    "Moderate calculus lower anteriors.", "Probing depths 2-3 mm generalized, 4 mm localized posterior.",
    "OHI given, recommended electric toothbrush.", "Pt declined fluoride.", "Topical anesthetic applied.",
    "2 carpules 2% lido 1:100k epi via IANB.", "Rubber dam placed, caries removed, composite placed and cured.",
    "Occlusion checked and adjusted.", "Post-op instructions given verbally and in writing.",
    "Pt tolerated procedure well.", "Recommended crown on #30 due to large existing restoration.",
    "Tx plan presented, pt will check with insurance.", "Radiographs reviewed, no new caries noted.",
    "Pt reports sensitivity to cold UR.", "Fractured cusp noted, temporary placed.",
)
NOTE_CLOSERS: tuple[str, ...] = ("RTC 6 mo.", "RTC 3 mo perio maint.", "Next visit: restorations per tx plan.", "RTC 2 wks post-op check.", "")

PATIENT_NOTES: tuple[str, ...] = (
    "Speaks Spanish; daughter translates.", "Prefers morning appointments.", "Very anxious, offer nitrous.",
    "Prefers text reminders.", "Hard of hearing, speak clearly.", "Spanish speaking only.",
    "Mother must accompany for all visits.", "Do not schedule on Fridays.", "Wants to be called at work.",
)

CHART_NUMBER_SETTINGS = "Chart numbers: numeric, assigned sequentially; alpha prefix disabled."

# (label, fieldtype, list values)
CUSTOM_FIELDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Preferred Language", "list", ("English", "Spanish", "Vietnamese", "Mandarin", "Tongan")),
    ("Emergency Contact", "text", ()),
    ("HIPAA Form Signed", "date", ()),
    ("Preferred Pharmacy", "text", ()),
    ("Dental Anxiety", "list", ("None", "Mild", "Moderate", "Severe")),
    ("Last Medical Hx Update", "date", ()),
)
CUSTOM_TEXT_VALUES: dict[str, tuple[str, ...]] = {
    "Emergency Contact": ("Spouse", "Mother", "Father", "Sister", "Brother", "Neighbor", "Friend"),
    "Preferred Pharmacy": ("Walgreens Main St", "CVS Lehi", "Smith's Pharmacy", "Costco Pharmacy", "Harmons"),
}
# Values typed into list fields that are not in the list (the audit must flag them).
OFF_LIST_VALUES: dict[str, tuple[str, ...]] = {
    "Preferred Language": ("spanish ", "Español", "Samoan", "ENGLISH"),
    "Dental Anxiety": ("very bad", "?", "Moderate-Severe"),
}

OPERATORIES_PREFIX = "OP"
