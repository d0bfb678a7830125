"""kinetics: reaction networks written once, sympy-generated models, lmfit fits."""
