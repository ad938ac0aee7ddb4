using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.DependencyInjection.Internal;

internal sealed class LodestarBuilder(IServiceCollection services) : ILodestarBuilder
{
    public IServiceCollection Services { get; } = services;
}
