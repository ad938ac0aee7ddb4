using Lodestar.AspNetCore.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.AspNetCore.Tests;

public sealed class PublicApiTests
{
    [Fact]
    public void Extensions_NullArguments_Throw()
    {
        IServiceCollection services = null!;
        IEndpointRouteBuilder endpoints = null!;
        Assert.Throws<ArgumentNullException>(() => services.AddLodestarServing());
        Assert.Throws<ArgumentNullException>(() => services.AddLodestarPrometheusExporter());
        Assert.Throws<ArgumentNullException>(() => services.AddLodestarRegistration(_ => { }));
        Assert.Throws<ArgumentNullException>(() => new ServiceCollection().AddLodestarRegistration(null!));
        Assert.Throws<ArgumentNullException>(() => endpoints.MapLodestarHealth());
        Assert.Throws<ArgumentNullException>(() => endpoints.MapLodestarMetrics());
    }

    [Fact]
    public async Task PrometheusExporter_NullStream_Throws()
    {
        using var exporter = new PrometheusExporter();
        await Assert.ThrowsAsync<ArgumentNullException>(() => exporter.WriteAsync(null!));
    }

    [Fact]
    public void MapLodestarHealth_WithoutAddLodestarServing_ThrowsNamingTheFix()
    {
        var app = WebApplication.CreateSlimBuilder().Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapLodestarHealth());
        Assert.Contains("AddLodestarServing", error.Message);
    }
}
