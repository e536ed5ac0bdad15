// The paper's Figure 3, inefficient version: tries every divisor up to sqrt(n).
bool is_prime(long long n) {
    if (n < 2) return false;
    for (long long i = 2; i * i <= n; i++)
        if (n % i == 0) return false;
    return true;
}
