"""Field-level mapping from staged Dentrix tables to Zoho-shaped tables.

The spec (``mapping_specs/dentrix_to_zoho.yaml``) says where every Dentrix object lands;
transforms make values fit; validation checks them against Zoho's field metadata;
the proposer suggests targets for what the spec does not cover; the approval gate
keeps everything beyond the sample waiting until a person approves the exact spec.
"""

from dentrix_zoho.mapping.approval import approval_status, approve_spec, is_current_spec_approved
from dentrix_zoho.mapping.ids import source_system_id, split_source_system_id
from dentrix_zoho.mapping.ledger_pdf import LedgerLine, render_ledger_pdf
from dentrix_zoho.mapping.metadata import apply_api_names, custom_fields, field_metadata, picklist_additions
from dentrix_zoho.mapping.proposer import FieldProposal, ProposedSection, propose
from dentrix_zoho.mapping.shape import shape_all
from dentrix_zoho.mapping.summary import ShapeSummary
from dentrix_zoho.mapping.spec import MappingSpec, SpecError, default_spec_path, load_spec, spec_hash
from dentrix_zoho.mapping.workflow_reference import write_workflow_reference

__all__ = [
    "FieldProposal", "LedgerLine", "MappingSpec", "ProposedSection", "ShapeSummary", "SpecError",
    "apply_api_names", "approval_status", "approve_spec", "custom_fields", "default_spec_path",
    "field_metadata", "is_current_spec_approved", "load_spec", "picklist_additions", "propose",
    "render_ledger_pdf", "shape_all", "source_system_id", "spec_hash", "split_source_system_id",
    "write_workflow_reference",
]
