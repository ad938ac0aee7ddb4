using Lodestar.Health;
using Lodestar.Http;
using Microsoft.Extensions.Options;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// Checks every health and resilience setting of a client at startup, and each service's health settings, naming the
/// client or service and the property.
/// </summary>
internal sealed class ResilienceOptionsValidator : IValidateOptions<LodestarClientOptions>, IValidateOptions<OutlierDetectionOptions>,
    IValidateOptions<HealthCheckOptions>, IValidateOptions<CircuitBreakerOptions>
{
    public ValidateOptionsResult Validate(string? name, OutlierDetectionOptions options)
        => Result(failures => ValidateOutlier(options, $"{nameof(OutlierDetectionOptions)} of service '{name}': ", failures));

    public ValidateOptionsResult Validate(string? name, HealthCheckOptions options)
        => Result(failures => ValidateChecks(options, $"{nameof(HealthCheckOptions)} of service '{name}': ", failures));

    public ValidateOptionsResult Validate(string? name, CircuitBreakerOptions options)
        => Result(failures => ValidateBreaker(options, $"{nameof(CircuitBreakerOptions)} of service '{name}': ", failures));

    public ValidateOptionsResult Validate(string? name, LodestarClientOptions options)
    {
        var failures = new List<string>();
        var prefix = $"{nameof(LodestarClientOptions)} of client '{name}'";

        var retry = options.Retry;
        var p = $"{prefix}: {nameof(options.Retry)}.";
        if (retry.RetryOnStatusCodes is { } codes)
        {
            foreach (var code in codes)
            {
                Check(code is >= 400 and <= 599, failures, $"{p}{nameof(retry.RetryOnStatusCodes)} contains {code}; only 400 to 599 may be retried.");
            }
        }

        if (options.Grpc.FailureStatusCodes is { } grpcCodes)
        {
            foreach (var code in grpcCodes)
            {
                Check(code is >= 1 and <= 16, failures,
                    $"{prefix}: {nameof(options.Grpc)}.{nameof(options.Grpc.FailureStatusCodes)} contains {code}; gRPC status codes that count as failures are 1 to 16.");
            }
        }

        Range(retry.BackoffBase, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1), $"{p}{nameof(retry.BackoffBase)}", failures);
        Range(retry.BackoffMax, retry.BackoffBase, TimeSpan.FromMinutes(5), $"{p}{nameof(retry.BackoffMax)}", failures);
        Range(retry.MaxRetryAfter, TimeSpan.Zero, TimeSpan.FromMinutes(5), $"{p}{nameof(retry.MaxRetryAfter)}", failures);
        if (retry.PerTryTimeout is { } perTry)
        {
            Range(perTry, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(10), $"{p}{nameof(retry.PerTryTimeout)}", failures);
        }

        if (retry.Timeout is { } timeout)
        {
            Range(timeout, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1), $"{p}{nameof(retry.Timeout)}", failures);
        }

        Range(retry.MaxBufferedBodyBytes, 0, 64 * 1024 * 1024, $"{p}{nameof(retry.MaxBufferedBodyBytes)}", failures);
        Check(retry.BudgetRatio is >= 0 and <= 10, failures, $"{p}{nameof(retry.BudgetRatio)} is {retry.BudgetRatio}; it must be between 0 and 10.");
        Range(retry.BudgetMinRetriesPerSecond, 0, 100_000, $"{p}{nameof(retry.BudgetMinRetriesPerSecond)}", failures);
        Range(retry.BudgetWindow, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(600), $"{p}{nameof(retry.BudgetWindow)}", failures);

        ValidateOutlier(options.OutlierDetection, $"{prefix}: {nameof(options.OutlierDetection)}.", failures);
        ValidateChecks(options.HealthChecks, $"{prefix}: {nameof(options.HealthChecks)}.", failures);
        ValidateBreaker(options.CircuitBreaker, $"{prefix}: {nameof(options.CircuitBreaker)}.", failures);

        var hedging = options.Hedging;
        p = $"{prefix}: {nameof(options.Hedging)}.";
        Range(hedging.Delay, TimeSpan.Zero, TimeSpan.FromMinutes(1), $"{p}{nameof(hedging.Delay)}", failures);
        Range(hedging.MaxHedgedAttempts, 1, 5, $"{p}{nameof(hedging.MaxHedgedAttempts)}", failures);
        if (hedging.DelayPercentile is { } percentile)
        {
            Check(percentile is > 0 and < 1, failures, $"{p}{nameof(hedging.DelayPercentile)} is {percentile}; it must be above 0 and below 1.");
        }

        if (hedging.MaxHedgeRatio is { } hedgeRatio)
        {
            Check(hedgeRatio is > 0 and <= 1, failures, $"{p}{nameof(hedging.MaxHedgeRatio)} is {hedgeRatio}; it must be above 0 and at most 1.");
        }

        var rate = options.RateLimit;
        p = $"{prefix}: {nameof(options.RateLimit)}.";
        Range(rate.TokenLimit, 1, 10_000_000, $"{p}{nameof(rate.TokenLimit)}", failures);
        Range(rate.TokensPerPeriod, 1, 10_000_000, $"{p}{nameof(rate.TokensPerPeriod)}", failures);
        Range(rate.ReplenishmentPeriod, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1), $"{p}{nameof(rate.ReplenishmentPeriod)}", failures);

        var limit = options.ConcurrencyLimit;
        p = $"{prefix}: {nameof(options.ConcurrencyLimit)}.";
        if (limit.MaxConcurrentRequests is { } max)
        {
            Range(max, 1, 1_000_000, $"{p}{nameof(limit.MaxConcurrentRequests)}", failures);
        }

        Range(limit.MaxPendingRequests, 0, 1_000_000, $"{p}{nameof(limit.MaxPendingRequests)}", failures);
        if (limit.MaxConcurrentRetries is { } retries)
        {
            Range(retries, 0, 1_000_000, $"{p}{nameof(limit.MaxConcurrentRetries)}", failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static void ValidateOutlier(OutlierDetectionOptions outlier, string p, List<string> failures)
    {
        Range(outlier.Interval, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(10), $"{p}{nameof(outlier.Interval)}", failures);
        Range(outlier.BaseEjectionTime, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1), $"{p}{nameof(outlier.BaseEjectionTime)}", failures);
        Range(outlier.MaxEjectionTime, outlier.BaseEjectionTime, TimeSpan.FromHours(24), $"{p}{nameof(outlier.MaxEjectionTime)}", failures);
        Range(outlier.MaxEjectionPercent, 0, 100, $"{p}{nameof(outlier.MaxEjectionPercent)}", failures);
        Range(outlier.ConsecutiveServerErrors, 0, 1_000_000, $"{p}{nameof(outlier.ConsecutiveServerErrors)}", failures);
        Range(outlier.ConsecutiveGatewayFailures, 0, 1_000_000, $"{p}{nameof(outlier.ConsecutiveGatewayFailures)}", failures);
        Range(outlier.EnforcingConsecutiveServerErrors, 0, 100, $"{p}{nameof(outlier.EnforcingConsecutiveServerErrors)}", failures);
        Range(outlier.EnforcingConsecutiveGatewayFailures, 0, 100, $"{p}{nameof(outlier.EnforcingConsecutiveGatewayFailures)}", failures);
        Range(outlier.EnforcingSuccessRate, 0, 100, $"{p}{nameof(outlier.EnforcingSuccessRate)}", failures);
        Range(outlier.EnforcingFailurePercentage, 0, 100, $"{p}{nameof(outlier.EnforcingFailurePercentage)}", failures);
        Range(outlier.FailurePercentageThreshold, 0, 100, $"{p}{nameof(outlier.FailurePercentageThreshold)}", failures);
        Range(outlier.SuccessRateMinimumHosts, 1, 1_000_000, $"{p}{nameof(outlier.SuccessRateMinimumHosts)}", failures);
        Range(outlier.SuccessRateRequestVolume, 1, 1_000_000_000, $"{p}{nameof(outlier.SuccessRateRequestVolume)}", failures);
        Range(outlier.FailurePercentageMinimumHosts, 1, 1_000_000, $"{p}{nameof(outlier.FailurePercentageMinimumHosts)}", failures);
        Range(outlier.FailurePercentageRequestVolume, 1, 1_000_000_000, $"{p}{nameof(outlier.FailurePercentageRequestVolume)}", failures);
        Check(outlier.SuccessRateStdevFactor is >= 0 and <= 100, failures, $"{p}{nameof(outlier.SuccessRateStdevFactor)} is {outlier.SuccessRateStdevFactor}; it must be between 0 and 100.");
    }

    internal static void ValidateChecks(HealthCheckOptions checks, string p, List<string> failures)
    {
        Check(!string.IsNullOrEmpty(checks.Path) && checks.Path[0] == '/', failures, $"{p}{nameof(checks.Path)} is '{checks.Path}'; it must start with '/'.");
        Range(checks.Interval, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1), $"{p}{nameof(checks.Interval)}", failures);
        Range(checks.IntervalJitter, TimeSpan.Zero, TimeSpan.FromHours(1), $"{p}{nameof(checks.IntervalJitter)}", failures);
        Range(checks.Timeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(5), $"{p}{nameof(checks.Timeout)}", failures);
        Range(checks.HealthyThreshold, 1, 100, $"{p}{nameof(checks.HealthyThreshold)}", failures);
        Range(checks.UnhealthyThreshold, 1, 100, $"{p}{nameof(checks.UnhealthyThreshold)}", failures);
        Range(checks.MinHealthyStatus, 100, 599, $"{p}{nameof(checks.MinHealthyStatus)}", failures);
        Range(checks.MaxHealthyStatus, checks.MinHealthyStatus, 599, $"{p}{nameof(checks.MaxHealthyStatus)}", failures);
    }

    internal static void ValidateBreaker(CircuitBreakerOptions breaker, string p, List<string> failures)
    {
        Check(breaker.FailureRatio is > 0 and <= 1, failures, $"{p}{nameof(breaker.FailureRatio)} is {breaker.FailureRatio}; it must be above 0 and at most 1.");
        Range(breaker.MinimumThroughput, 1, 1_000_000, $"{p}{nameof(breaker.MinimumThroughput)}", failures);
        Range(breaker.SamplingDuration, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1), $"{p}{nameof(breaker.SamplingDuration)}", failures);
        Range(breaker.BreakDuration, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1), $"{p}{nameof(breaker.BreakDuration)}", failures);
        Range(breaker.HalfOpenMaxProbes, 1, 1_000, $"{p}{nameof(breaker.HalfOpenMaxProbes)}", failures);
    }

    private static ValidateOptionsResult Result(Action<List<string>> validate)
    {
        var failures = new List<string>();
        validate(failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Check(bool ok, List<string> failures, string message)
    {
        if (!ok)
        {
            failures.Add(message);
        }
    }

    private static void Range(TimeSpan value, TimeSpan min, TimeSpan max, string what, List<string> failures)
        => Check(value >= min && value <= max, failures, $"{what} is {value}; it must be between {min} and {max}.");

    private static void Range(int value, int min, int max, string what, List<string> failures)
        => Check(value >= min && value <= max, failures, $"{what} is {value}; it must be between {min} and {max}.");
}
