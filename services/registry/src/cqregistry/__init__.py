"""cqregistry"""
