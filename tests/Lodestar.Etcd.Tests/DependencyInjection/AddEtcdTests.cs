using Lodestar.Discovery;
using Lodestar.Registration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Etcd.Tests.DependencyInjection;

public sealed class AddEtcdTests
{
    [Fact]
    public void AddEtcd_Twice_RegistersSourceAndRegistrarOnce()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestar().AddEtcd().AddEtcd();
        using var provider = services.BuildServiceProvider();

        Assert.Single(provider.GetServices<IEndpointSourceProvider>(), p => p.Name == "etcd");
        Assert.Equal("etcd", Assert.Single(provider.GetServices<IServiceRegistrar>()).Name);
    }

    [Fact]
    public void AddEtcd_Configuration_BindsLodestarEtcdSectionThenDelegate()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Etcd:Address"] = "http://10.1.2.3:2379",
            ["Lodestar:Etcd:Prefix"] = "/services/",
        }).Build());
        services.AddLodestar().AddEtcd(o => o.Prefix = "/svc/");
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<EtcdOptions>>().Value;

        Assert.Equal("http://10.1.2.3:2379", options.Address);
        Assert.Equal("/svc/", options.Prefix);
    }

    [Fact]
    public void AddEtcd_InvalidOptions_FailsValidationNamingEachProblem()
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddEtcd(o =>
        {
            o.Address = "etcd:2379/v3";
            o.Username = "root";
            o.RequestTimeout = TimeSpan.Zero;
            o.CaCertificatePath = "/nonexistent/ca.pem";
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EtcdOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.Address), StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.Password), StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.RequestTimeout), StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.CaCertificatePath), StringComparison.Ordinal));
    }

    [Fact]
    public void AddEtcd_AddressListWithMalformedEntry_FailsAtStartNamingTheEntry()
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddEtcd(o => o.Address = "http://127.0.0.1:2379, 127.0.0.1:22379 ,https://user:s3cret@127.0.0.1:32379");
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EtcdOptions>>().Value);

        Assert.Equal(2, error.Failures.Count());
        Assert.Contains(error.Failures, f => f.Contains("Address entry 2 of 3, '127.0.0.1:22379',", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("Address entry 3 of 3, 'https://***@127.0.0.1:32379',", StringComparison.Ordinal));
        Assert.DoesNotContain(error.Failures, f => f.Contains("s3cret", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://127.0.0.1:2379,,http://127.0.0.1:22379", "empty entry 2 of 3")]
    [InlineData("http://127.0.0.1:2379,", "empty entry 2 of 2")]
    [InlineData(" ", "is empty")]
    public void AddEtcd_AddressWithEmptyEntry_Fails(string address, string expected)
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddEtcd(o => o.Address = address);
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EtcdOptions>>().Value);

        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.Address), StringComparison.Ordinal) && f.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void AddEtcd_AddressList_PassesValidationAndClientKeepsEveryEndpointInOrder()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestar().AddEtcd(o => o.Address = "http://10.0.0.1:2379 , https://etcd-2.internal:2379/,http://[::1]:2379");
        using var provider = services.BuildServiceProvider();

        var client = provider.GetRequiredService<Lodestar.Etcd.Client.Internal.EtcdClient>();

        Assert.Equal(["http://10.0.0.1:2379", "https://etcd-2.internal:2379", "http://[::1]:2379"], client.Endpoints);
        Assert.Equal("http://10.0.0.1:2379", client.DisplayAddress);
    }

    private static EtcdOptions Bind(Dictionary<string, string?> values)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
        services.AddLodestar().AddEtcd();
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<EtcdOptions>>().Value;
    }

    [Fact]
    public void AddEtcd_Defaults_AreClientGoBackoffAndDocumentedLimits()
    {
        var options = new EtcdOptions();

        Assert.Equal(TimeSpan.FromMilliseconds(800), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromMinutes(2), options.Backoff.ResetAfter);
        Assert.Equal(TimeSpan.FromMinutes(25), options.WatchProgressTimeout);
        Assert.Equal(64L * 1024 * 1024, options.MaxRangeResponseBytes);
        Assert.Equal(64L * 1024 * 1024, options.MaxWatchMessageBytes);
    }

    [Fact]
    public void AddEtcd_BackoffSectionAndLimits_BindFromConfiguration()
    {
        var options = Bind(new()
        {
            ["Lodestar:Etcd:Backoff:InitialDelay"] = "00:00:00.250",
            ["Lodestar:Etcd:Backoff:MaxDelay"] = "00:00:05",
            ["Lodestar:Etcd:Backoff:ResetAfter"] = "00:01:00",
            ["Lodestar:Etcd:WatchProgressTimeout"] = "00:01:15",
            ["Lodestar:Etcd:MaxRangeResponseBytes"] = "2097152",
            ["Lodestar:Etcd:MaxWatchMessageBytes"] = "1048576",
        });

        Assert.Equal(TimeSpan.FromMilliseconds(250), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(5), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromMinutes(1), options.Backoff.ResetAfter);
        Assert.Equal(TimeSpan.FromSeconds(75), options.WatchProgressTimeout);
        Assert.Equal(2097152, options.MaxRangeResponseBytes);
        Assert.Equal(1048576, options.MaxWatchMessageBytes);
    }

#pragma warning disable CS0618 // The obsolete alias is what these tests are about.
    [Fact]
    public void AddEtcd_ObsoleteMaxRetryDelay_StillBindsAndForwardsToBackoffMaxDelay()
    {
        var options = Bind(new() { ["Lodestar:Etcd:MaxRetryDelay"] = "00:00:07" });

        Assert.Equal(TimeSpan.FromSeconds(7), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromSeconds(7), options.MaxRetryDelay);
        options.MaxRetryDelay = TimeSpan.FromSeconds(3);
        Assert.Equal(TimeSpan.FromSeconds(3), options.Backoff.MaxDelay);
    }

    [Fact]
    public void AddEtcd_BothMaxRetryDelayAndBackoffMaxDelay_BackoffWins()
    {
        var options = Bind(new()
        {
            ["Lodestar:Etcd:MaxRetryDelay"] = "00:00:07",
            ["Lodestar:Etcd:Backoff:MaxDelay"] = "00:00:09",
        });

        Assert.Equal(TimeSpan.FromSeconds(9), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromSeconds(9), options.MaxRetryDelay);
    }
#pragma warning restore CS0618

    [Fact]
    public void AddEtcd_InvalidBackoffProgressTimeoutAndLimits_FailValidationNamingEach()
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddEtcd(o =>
        {
            o.Backoff.MaxDelay = TimeSpan.FromMinutes(10);
            o.WatchProgressTimeout = TimeSpan.FromMilliseconds(10);
            o.MaxRangeResponseBytes = 0;
            o.MaxWatchMessageBytes = 3L * 1024 * 1024 * 1024;
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<EtcdOptions>>().Value);

        Assert.Contains(error.Failures, f => f.StartsWith("Lodestar:Etcd:Backoff:ResetAfter", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.WatchProgressTimeout), StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.MaxRangeResponseBytes), StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains(nameof(EtcdOptions.MaxWatchMessageBytes), StringComparison.Ordinal));
    }

    [Fact]
    public void AddEtcd_InfiniteWatchProgressTimeout_IsValid()
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddEtcd(o => o.WatchProgressTimeout = Timeout.InfiniteTimeSpan);
        using var provider = services.BuildServiceProvider();

        Assert.Equal(Timeout.InfiniteTimeSpan, provider.GetRequiredService<IOptions<EtcdOptions>>().Value.WatchProgressTimeout);
    }

    [Fact]
    public void AddEtcd_NullBuilder_Throws()
        => Assert.Throws<ArgumentNullException>(() => EtcdLodestarBuilderExtensions.AddEtcd(null!));
}
