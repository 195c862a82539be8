"""cqfollow"""
