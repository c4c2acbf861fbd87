"""Keeps the Makenaide ticker list in step with Upbit's KRW markets"""
