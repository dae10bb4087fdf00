DROP TABLE production_slot_licenses;
DROP TABLE production_slots;
DROP TABLE production_orders;
