"""Senior care ("Pulaohui"): nursing-home admission, caregiver booking and aging-friendly home
retrofits, as pure rules. The serve side (cityops.serve.seniorcare) keeps them in the store."""
