"""cqadjudication"""
