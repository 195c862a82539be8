"""cqgateway"""
