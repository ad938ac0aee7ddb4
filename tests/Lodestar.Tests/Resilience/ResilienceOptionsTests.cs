using Lodestar.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.Resilience;

public sealed class ResilienceOptionsTests
{
    [Fact]
    public async Task Options_BoundFromConfiguration_ClientSectionApplies()
    {
        await using var host = ResilienceTestHost.Create(settings: new Dictionary<string, string?>
        {
            ["Lodestar:Clients:test:MaxAttempts"] = "2",
            ["Lodestar:Clients:test:Retry:PerTryTimeout"] = "00:00:01",
            ["Lodestar:Clients:test:Retry:RetryOnStatusCodes:0"] = "500",
            ["Lodestar:Clients:test:OutlierDetection:ConsecutiveServerErrors"] = "7",
            ["Lodestar:Clients:test:HealthChecks:Enabled"] = "true",
            ["Lodestar:Clients:test:CircuitBreaker:Enabled"] = "true",
            ["Lodestar:Clients:test:Hedging:DelayPercentile"] = "0.95",
            ["Lodestar:Clients:test:Hedging:MaxHedgeRatio"] = "0.05",
            ["Lodestar:Clients:test:Hedging:SkipWhenThreadPoolBusy"] = "false",
            ["Lodestar:Clients:test:RateLimit:TokenLimit"] = "5",
            ["Lodestar:Clients:test:ConcurrencyLimit:MaxConcurrentRequests"] = "64",
        });

        var options = host.Services.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get("test");

        Assert.Equal(2, options.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(1), options.Retry.PerTryTimeout);
        Assert.Equal([500], options.Retry.RetryOnStatusCodes!);
        Assert.Equal(7, options.OutlierDetection.ConsecutiveServerErrors);
        Assert.True(options.HealthChecks.Enabled);
        Assert.True(options.CircuitBreaker.Enabled);
        Assert.Equal(0.95, options.Hedging.DelayPercentile);
        Assert.Equal(0.05, options.Hedging.MaxHedgeRatio);
        Assert.False(options.Hedging.SkipWhenThreadPoolBusy);
        Assert.Equal(5, options.RateLimit.TokenLimit);
        Assert.Equal(64, options.ConcurrencyLimit.MaxConcurrentRequests);
    }

    [Fact]
    public async Task Options_Defaults_MatchTheDocumentedValues()
    {
        await using var host = ResilienceTestHost.Create();

        var options = host.Services.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get("test");

        Assert.Null(options.Retry.RetryOnStatusCodes);
        Assert.Equal(TimeSpan.FromMilliseconds(25), options.Retry.BackoffBase);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.Retry.BackoffMax);
        Assert.Equal(0.2, options.Retry.BudgetRatio);
        Assert.True(options.OutlierDetection.Enabled);
        Assert.Equal(5, options.OutlierDetection.ConsecutiveServerErrors);
        Assert.Equal(TimeSpan.FromSeconds(30), options.OutlierDetection.BaseEjectionTime);
        Assert.Equal(10, options.OutlierDetection.MaxEjectionPercent);
        Assert.False(options.HealthChecks.Enabled);
        Assert.False(options.CircuitBreaker.Enabled);
        Assert.False(options.Hedging.Enabled);
        Assert.Null(options.Hedging.MaxHedgeRatio);
        Assert.True(options.Hedging.SkipWhenThreadPoolBusy);
        Assert.False(options.RateLimit.Enabled);
        Assert.Null(options.ConcurrencyLimit.MaxConcurrentRequests);
    }

    [Fact]
    public async Task Options_OutOfRange_ValidationNamesClientAndProperty()
    {
        await using var host = ResilienceTestHost.Create(o =>
        {
            o.Retry.BackoffMax = TimeSpan.FromMilliseconds(1);
            o.OutlierDetection.MaxEjectionPercent = 150;
            o.CircuitBreaker.FailureRatio = 0;
            o.HealthChecks.Path = "readyz";
            o.Hedging.DelayPercentile = 1.5;
            o.Hedging.MaxHedgeRatio = 0;
            o.ConcurrencyLimit.MaxConcurrentRequests = 0;
            o.ConcurrencyLimit.MaxConcurrentRetries = -1;
            o.Retry.RetryOnStatusCodes = [200];
        });

        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>().Get("test"));

        Assert.Contains("client 'test'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Retry.BackoffMax", error.Message, StringComparison.Ordinal);
        Assert.Contains("OutlierDetection.MaxEjectionPercent", error.Message, StringComparison.Ordinal);
        Assert.Contains("CircuitBreaker.FailureRatio", error.Message, StringComparison.Ordinal);
        Assert.Contains("HealthChecks.Path", error.Message, StringComparison.Ordinal);
        Assert.Contains("Hedging.DelayPercentile", error.Message, StringComparison.Ordinal);
        Assert.Contains("Hedging.MaxHedgeRatio", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConcurrencyLimit.MaxConcurrentRequests", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConcurrencyLimit.MaxConcurrentRetries", error.Message, StringComparison.Ordinal);
        Assert.Contains("RetryOnStatusCodes contains 200", error.Message, StringComparison.Ordinal);
    }
}
