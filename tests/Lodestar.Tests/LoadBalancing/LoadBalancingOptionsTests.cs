using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Tests.LoadBalancing;

public class LoadBalancingOptionsTests
{
    [Fact]
    public void Get_ServiceSectionAndDefaults_BindsBothServiceWinning()
    {
        // Arrange
        using var provider = Provider(new Dictionary<string, string?>
        {
            ["Lodestar:LoadBalancing:Defaults:ChoiceCount"] = "3",
            ["Lodestar:LoadBalancing:Defaults:LocalZone"] = "eu-1a",
            ["Lodestar:LoadBalancing:Services:orders:Policy"] = "maglev",
            ["Lodestar:LoadBalancing:Services:orders:ChoiceCount"] = "4",
            ["Lodestar:LoadBalancing:Services:orders:HashKeyHeader"] = "X-User",
            ["Lodestar:LoadBalancing:Services:orders:SlowStartWindow"] = "00:00:30",
            ["Lodestar:LoadBalancing:Services:orders:TrafficSplits:0:Percent"] = "10",
            ["Lodestar:LoadBalancing:Services:orders:TrafficSplits:0:Match:version"] = "v2",
        });

        // Act
        var monitor = provider.GetRequiredService<IOptionsMonitor<LoadBalancingOptions>>();
        var orders = monitor.Get("orders");
        var other = monitor.Get("payments");

        // Assert
        Assert.Equal("maglev", orders.Policy);
        Assert.Equal(4, orders.ChoiceCount);
        Assert.Equal("eu-1a", orders.LocalZone);
        Assert.Equal(TimeSpan.FromSeconds(30), orders.SlowStartWindow);
        Assert.Equal("v2", Assert.Single(orders.TrafficSplits).Match["version"]);
        Assert.Equal(3, other.ChoiceCount);
        Assert.Null(other.Policy);
    }

    [Fact]
    public void Validate_OutOfRangeValues_NamesServiceAndProperty()
    {
        // Arrange
        using var provider = Provider(new Dictionary<string, string?>
        {
            ["Lodestar:LoadBalancing:Services:orders:MaglevTableSize"] = "65536",
            ["Lodestar:LoadBalancing:Services:orders:HashBalanceFactor"] = "0.5",
            ["Lodestar:LoadBalancing:Services:orders:Policy"] = "fastest",
        });

        // Act
        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptionsMonitor<LodestarOptions>>().Get(Options.DefaultName));

        // Assert: the startup validation of LodestarOptions reports every configured service's problems.
        Assert.Contains(error.Failures, f => f.Contains("service 'orders'", StringComparison.Ordinal) && f.Contains("MaglevTableSize", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("HashBalanceFactor", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("'fastest'", StringComparison.Ordinal));
    }

    [Fact]
    public void AddLodestarCore_BuiltInPolicies_AllRegisteredByName()
    {
        // Arrange
        using var provider = Provider([]);

        // Act
        var names = provider.GetServices<ILoadBalancingPolicy>().Select(p => p.Name).Order().ToArray();

        // Assert
        Assert.Equal(new[] { "least-request", "maglev", "peak-ewma", "random", "ring-hash", "round-robin", "weighted-round-robin" }, names);
    }

    [Fact]
    public async Task GetAsync_ServiceOptionsNamePolicy_UsedWhenClientNamesNone()
    {
        // Arrange
        await using var provider = Provider(new Dictionary<string, string?>
        {
            ["Lodestar:LoadBalancing:Services:orders:Policy"] = "peak-ewma",
            ["Lodestar:Services:orders:Endpoints:0"] = "127.0.0.1:5001",
            ["Lodestar:Services:orders:Endpoints:1"] = "127.0.0.1:5002",
        });
        var registry = provider.GetRequiredService<BalancerRegistry>();

        // Act
        var balancer = await registry.GetAsync("orders", null, null, CancellationToken.None);

        // Assert
        Assert.Equal("peak-ewma", balancer.PolicyName);
    }

    [Theory]
    [InlineData(65_537, true)]
    [InlineData(65_536, false)]
    [InlineData(7, true)]
    public void IsPrime_TableSizes_Recognised(int value, bool prime) => Assert.Equal(prime, LoadBalancingOptionsValidator.IsPrime(value));

    private static ServiceProvider Provider(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddLodestar();
        return services.BuildServiceProvider();
    }
}
