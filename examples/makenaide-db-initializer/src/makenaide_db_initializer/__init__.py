"""Creates and validates the Makenaide PostgreSQL schema"""
