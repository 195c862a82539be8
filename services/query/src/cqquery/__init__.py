"""cqquery"""
