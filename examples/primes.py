def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    
    return True


def count_primes(limit: int) -> int:
    """How many primes are below limit."""
    return sum(1 for k in range(limit) if is_prime(k))
