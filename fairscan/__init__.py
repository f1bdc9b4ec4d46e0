"""fairscan: find and fix disparate exclusion in targeting and recommendation models."""
