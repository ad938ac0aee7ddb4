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
    public void AddEtcd_NullBuilder_Throws()
        => Assert.Throws<ArgumentNullException>(() => EtcdLodestarBuilderExtensions.AddEtcd(null!));
}
