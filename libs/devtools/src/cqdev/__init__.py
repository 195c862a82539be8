"""cqdev"""
