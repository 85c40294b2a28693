"""Module and field metadata: the seeded standard fields (https://www.zoho.com/crm/developer/docs/api/v8/field-meta.html, https://www.zoho.com/crm/developer/docs/api/v8/modules-api.html) and custom-field rules."""

from __future__ import annotations

import re
from typing import Any

RECORD_MODULES = ("Leads", "Contacts", "Events", "Tasks", "Calls", "Notes")
LISTED_MODULES = RECORD_MODULES + ("Attachments",)
CUSTOM_FIELD_MODULES = ("Leads", "Contacts", "Events", "Tasks", "Calls")
BULK_WRITE_MODULES = ("Leads", "Contacts", "Tasks")
# Modules a What_Id may point at ($se_module), restricted to those the emulator has.
WHAT_ID_MODULES = ("Leads",)
SYSTEM_DUPLICATE_CHECK = {"Leads": ("Email",), "Contacts": ("Email",)}

MODULE_LABELS = {
    "Leads": ("Lead", "Leads"), "Contacts": ("Contact", "Contacts"), "Events": ("Meeting", "Meetings"),
    "Tasks": ("Task", "Tasks"), "Calls": ("Call", "Calls"), "Notes": ("Note", "Notes"),
    "Attachments": ("Attachment", "Attachments"),
}

LEAD_SOURCES = [
    "-None-", "Advertisement", "Chat", "Cold Call", "Employee Referral", "External Referral", "Facebook",
    "Internal Seminar", "Online Store", "Partner", "Public Relations", "Sales Email Alias",
    "Seminar Partner", "Trade Show", "Twitter", "Web Download", "Web Research",
]
LEAD_STATUSES = [
    "-None-", "Attempted to Contact", "Contact in Future", "Contacted", "Junk Lead", "Lost Lead",
    "Not Contacted", "Pre-Qualified", "Not Qualified",
]
SALUTATIONS = ["-None-", "Mr.", "Mrs.", "Ms.", "Dr.", "Prof."]

JSON_TYPES = {
    "text": "string", "textarea": "string", "email": "string", "phone": "string", "website": "string",
    "picklist": "string", "date": "string", "datetime": "string", "bigint": "string",
    "integer": "integer", "double": "double", "currency": "double", "percent": "double",
    "boolean": "boolean", "multiselectpicklist": "jsonarray", "lookup": "jsonobject",
    "ownerlookup": "jsonobject", "userlookup": "jsonobject", "subform": "jsonarray",
    "participants": "jsonarray", "parent_id": "jsonobject", "autonumber": "string",
}
# Custom-field types we accept on POST /settings/fields, with (min, max, default) length.
CUSTOM_TYPES: dict[str, tuple[int, int, int] | None] = {
    "text": (1, 255, 255), "email": (1, 100, 100), "phone": (1, 30, 30), "integer": (1, 9, 9),
    "bigint": (1, 18, 18), "double": (1, 18, 16), "currency": (1, 16, 16), "percent": (1, 5, 5),
    "website": (1, 450, 255), "textarea": None, "boolean": None, "date": None, "datetime": None,
    "picklist": None, "multiselectpicklist": None, "lookup": None, "userlookup": None, "subform": None,
}
TEXTAREA_LENGTHS = {"small": 2000, "large": 32000, "rich_text": 50000}
SUBFORM_ROW_TYPES = ("text", "textarea", "email", "phone", "integer", "bigint", "double", "currency",
                     "percent", "website", "boolean", "date", "datetime", "picklist", "multiselectpicklist")
MAX_UNIQUE_PER_MODULE = 2


def _f(api_name: str, data_type: str, length: int | None = None, *, label: str | None = None,
       mandatory: bool = False, read_only: bool = False, values: list[str] | None = None,
       lookup: str | None = None) -> dict[str, Any]:
    return {
        "api_name": api_name, "field_label": label or api_name.replace("_", " "), "data_type": data_type,
        "length": length, "system_mandatory": mandatory, "read_only": read_only, "custom_field": False,
        "unique": False, "external": False, "pick_list_values": values, "lookup_module": lookup,
    }


def _system() -> list[dict[str, Any]]:
    return [
        _f("Owner", "ownerlookup", label="Owner", lookup="Users"),
        _f("Created_By", "ownerlookup", read_only=True, lookup="Users"),
        _f("Modified_By", "ownerlookup", read_only=True, lookup="Users"),
        _f("Created_Time", "datetime", read_only=True),
        _f("Modified_Time", "datetime", read_only=True),
    ]


def _person(first: str = "First_Name") -> list[dict[str, Any]]:
    return [
        _f("Salutation", "picklist", values=SALUTATIONS),
        _f(first, "text", 40), _f("Last_Name", "text", 80, mandatory=True),
        _f("Email", "email", 100), _f("Secondary_Email", "email", 100),
        _f("Phone", "phone", 30), _f("Mobile", "phone", 30), _f("Fax", "phone", 30),
        _f("Lead_Source", "picklist", values=LEAD_SOURCES), _f("Email_Opt_Out", "boolean"),
        _f("Description", "textarea", 32000),
    ]


STANDARD_FIELDS: dict[str, list[dict[str, Any]]] = {
    "Contacts": _system() + _person() + [
        _f("Home_Phone", "phone", 30), _f("Other_Phone", "phone", 30), _f("Title", "text", 100),
        _f("Department", "text", 100), _f("Date_of_Birth", "date"),
        _f("Mailing_Street", "text", 250), _f("Mailing_City", "text", 100), _f("Mailing_State", "text", 100),
        _f("Mailing_Zip", "text", 30), _f("Mailing_Country", "text", 100),
        _f("Reports_To", "lookup", lookup="Contacts"),
    ],
    "Leads": _system() + _person() + [
        _f("Company", "text", 200), _f("Website", "website", 255),
        _f("Lead_Status", "picklist", values=LEAD_STATUSES),
        _f("Street", "text", 250), _f("City", "text", 100), _f("State", "text", 100),
        _f("Zip_Code", "text", 30), _f("Country", "text", 100),
    ],
    "Events": _system() + [
        _f("Event_Title", "text", 255, mandatory=True), _f("Start_DateTime", "datetime", mandatory=True),
        _f("End_DateTime", "datetime", mandatory=True), _f("All_day", "boolean"), _f("Venue", "text", 255),
        _f("Who_Id", "lookup", label="Contact Name", lookup="Contacts"),
        _f("What_Id", "lookup", label="Related To", lookup="$se_module"),
        _f("Participants", "participants"), _f("Description", "textarea", 32000),
    ],
    "Tasks": _system() + [
        _f("Subject", "text", 255, mandatory=True), _f("Due_Date", "date"),
        _f("Status", "picklist", values=["Not Started", "Deferred", "In Progress", "Completed",
                                          "Waiting for input"]),
        _f("Priority", "picklist", values=["High", "Highest", "Low", "Lowest", "Normal"]),
        _f("Who_Id", "lookup", label="Contact Name", lookup="Contacts"),
        _f("What_Id", "lookup", label="Related To", lookup="$se_module"),
        _f("Description", "textarea", 32000),
    ],
    "Calls": _system() + [
        _f("Subject", "text", 255, mandatory=True),
        _f("Call_Type", "picklist", mandatory=True, values=["Inbound", "Outbound", "Missed"]),
        _f("Call_Start_Time", "datetime", mandatory=True),
        _f("Call_Duration", "text", 10, mandatory=True),
        _f("Call_Purpose", "picklist", values=["-None-", "Prospecting", "Administrative", "Negotiation",
                                                "Demo", "Project", "Desk"]),
        _f("Call_Result", "text", 255), _f("Call_Agenda", "text", 255),
        _f("Who_Id", "lookup", label="Contact Name", lookup="Contacts"),
        _f("What_Id", "lookup", label="Related To", lookup="$se_module"),
        _f("Description", "textarea", 32000),
    ],
    "Notes": _system() + [
        _f("Note_Title", "text", 255), _f("Note_Content", "textarea", 32000, mandatory=True),
        _f("Parent_Id", "parent_id", mandatory=True),
    ],
    "Attachments": _system() + [
        _f("File_Name", "text", 255, read_only=True), _f("Size", "text", 32, read_only=True),
        _f("Parent_Id", "parent_id", read_only=True),
    ],
}


def api_name_from_label(label: str, taken: set[str]) -> str:
    """Zoho's rule: spaces (and, our choice for other punctuation) become underscores, case kept;
    no double underscores, no trailing underscore, must start with a letter; a clash gets 1, 2, ..."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", label.strip()).strip("_")
    base = re.sub(r"_+", "_", base)
    if not base or not base[0].isalpha():
        base = f"Field_{base}".rstrip("_") if base else "Field"
    lowered = {name.lower() for name in taken}
    if base.lower() not in lowered:
        return base
    n = 1
    while f"{base}{n}".lower() in lowered:
        n += 1
    return f"{base}{n}"


def field_public(field: dict[str, Any], module: str, ids: dict[str, str]) -> dict[str, Any]:
    """The shape GET /settings/fields returns for one field."""
    data_type = field["data_type"]
    out: dict[str, Any] = {
        "api_name": field["api_name"], "field_label": field["field_label"],
        "display_label": field["field_label"], "data_type": data_type,
        "json_type": JSON_TYPES.get(data_type, "string"), "length": field.get("length"),
        "custom_field": field["custom_field"], "system_mandatory": field["system_mandatory"],
        "read_only": field["read_only"], "field_read_only": field["read_only"],
        "unique": {"casesensitive": False} if field.get("unique") else {},
        "external": {"show": True, "type": "user", "allow_multiple_config": False}
        if field.get("external") else None,
        "visible": True, "id": field.get("id") or ids.get(f"{module}.{field['api_name']}", ""),
        "operation_type": {"api_create": not field["read_only"], "api_update": not field["read_only"],
                           "web_create": not field["read_only"], "web_update": not field["read_only"]},
        "pick_list_values": [
            {"display_value": v, "actual_value": v, "sequence_number": i + 1, "type": "used",
             "id": f"{out_id_seed(field['api_name'])}{i:04d}"}
            for i, v in enumerate(field.get("pick_list_values") or [])
        ],
        "lookup": {},
    }
    target = field.get("lookup_module")
    if data_type in ("lookup", "userlookup", "ownerlookup") and target:
        out["lookup"] = {"module": {"api_name": target}, "display_label": field["field_label"],
                         "api_name": field["api_name"]}
    if data_type == "subform":
        out["subform"] = {"fields": [field_public(row, module, ids) for row in field.get("subform_fields", [])]}
    return out


def out_id_seed(api_name: str) -> str:
    # Stable digits per field name, for picklist value ids.
    return str(sum(ord(c) * (i + 7) for i, c in enumerate(api_name)) % 10**15).zfill(15)
